"""The embedded local lab, for real: user-mode Linux guests, real VRRP, real IPVS DR.

Every lab these tests start, they tear down; each test then checks the host is clean.
The lab files are the seed's, renamed per test, with the suite's buildable versions.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halab import paths, render, spec
from halab.errors import ProviderError
from halab.paths import LabPaths
from halab.providers.faults import Fault
from halab.providers.local.processes import processes
from halab.providers.local.provider import LocalProvider
from tests.fixtures import assert_clean, invoke, lab_file, needs_root, requests_through_vip

pytestmark = [needs_root("the lab creates network namespaces and user-mode Linux guests with taps"), pytest.mark.root]


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory) -> Path:
    return lab_file(tmp_path_factory.mktemp("seed"), "t-lab")


@pytest.fixture(scope="module")
def seed_lab(builds, seed_file):
    lab = spec.load(seed_file)
    provider = LocalProvider(lab, progress=lambda _: None)
    provider.up()
    yield provider
    provider.down()
    assert_clean(lab.name)


def test_vip_sits_on_the_master_only(seed_lab):
    rows = {row.name: row for row in seed_lab.status()}
    assert all(row.up for row in rows.values())
    assert rows["server3"].vrrp == "MASTER" and rows["server3"].vips == ("172.25.1.100",)
    assert rows["server4"].vrrp == "BACKUP" and rows["server4"].vips == ()


def test_twenty_requests_alternate_between_the_real_servers(seed_lab):
    pages = requests_through_vip(seed_lab, 20)
    assert len(pages) == 20 and "FAILED" not in pages
    assert set(pages) == {"<h1>server1's page</h1>", "<h1>server2's page</h1>"}
    assert all(a != b for a, b in itertools.pairwise(pages)), pages


def test_the_director_runs_real_ipvs_in_direct_routing(seed_lab):
    table = seed_lab.remote.check("server3", "ipvsadm -Ln")
    assert "TCP  172.25.1.100:80 rr" in table
    assert "172.25.1.101:80              Route   1" in table and "172.25.1.102:80              Route   1" in table


def test_up_again_is_a_no_op(seed_lab):
    said: list[str] = []
    LocalProvider(seed_lab.lab, progress=said.append).up()
    assert said == [f"lab {seed_lab.lab.name!r} is already up"]


def test_the_lab_subnet_never_reaches_the_root_namespace(seed_lab):
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "172.25.1." not in addresses and "172.25.1." not in routes


def test_threads_of_a_guest_process_keep_their_own_avx512_registers(seed_lab):
    """UML's own save and restore of each guest task's FPU state (AVX-512 included) comes
    through xstate.c intact: two threads of one guest process hold different patterns in
    zmm16/zmm31 and hand a token back and forth 4000 times, each turn a switch between them."""
    if "avx512f" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU has no AVX-512 registers to hold the patterns in")
    source = Path(__file__).with_name("fpu_threads.c")  # the guests see the host's files read-only
    out = seed_lab.remote.check(
        "client", f"cc -O2 -mavx512f -pthread -o /tmp/fpu_threads {source} && /tmp/fpu_threads", timeout=180
    )
    assert out.startswith("ok: 4000 switches"), out


def test_a_lab_killed_mid_boot_is_cleaned_by_lab_down(builds, tmp_path):
    path = lab_file(tmp_path, "t-killed")
    starter = subprocess.Popen(
        [sys.executable, "-m", "invoke", "lab.up", "--lab", str(path)],
        cwd=paths.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not processes(f"umid={LabPaths('t-killed').guest_tag()}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes(f"umid={LabPaths('t-killed').guest_tag()}"), "no guest started within 30 s"
    os.kill(starter.pid, signal.SIGKILL)
    starter.wait()
    result = invoke("lab.down", "--lab", str(path))
    assert result.returncode == 0, result.stderr
    assert_clean("t-killed")
    assert invoke("lab.down", "--name", "t-killed").returncode == 0  # idempotent


def test_two_labs_run_side_by_side(seed_lab, builds, tmp_path):
    twin = LocalProvider(spec.load(lab_file(tmp_path, "t-twin")), progress=lambda _: None)
    try:
        twin.up()
        twin_pages = requests_through_vip(twin, 4)
        assert len(twin_pages) == 4 and "FAILED" not in twin_pages
        assert "FAILED" not in requests_through_vip(seed_lab, 4)
    finally:
        twin.down()
    assert_clean("t-twin")
    assert all(row.up for row in seed_lab.status())


def test_a_broken_lab_file_stops_lab_up_before_anything_starts(tmp_path):
    path = lab_file(tmp_path, "t-broken")
    path.write_text(path.read_text().replace("priority: 100}", "priority: 300}"))
    result = invoke("lab.up", "--lab", str(path))
    assert result.returncode == 2
    assert "nodes.server3.priority: 300 is not allowed" in result.stderr
    assert not LabPaths("t-broken").root.exists()
    assert_clean("t-broken")


def test_a_failing_node_shows_its_console_and_everything_is_torn_down(builds, tmp_path, monkeypatch):
    lab = spec.load(lab_file(tmp_path, "t-failing"))
    provider = LocalProvider(lab, progress=lambda _: None)
    monkeypatch.setattr("halab.providers.local.provider.GUEST_MEMORY", "1M")  # too little for a kernel to boot
    monkeypatch.setattr("halab.providers.local.provider.BOOT_TIMEOUT", 20.0)
    with pytest.raises(Exception) as caught:
        provider.up()
    assert "console.log" in str(caught.value)
    assert_clean("t-failing")


def test_testinfra_reaches_nodes_through_the_ssh_config(seed_lab):
    import testinfra

    host = testinfra.get_host("ssh://server1", ssh_config=str(seed_lab.ssh_config()))
    assert host.run("hostname").stdout.strip() == "server1"
    assert host.file("/usr/local/nginx/html/index.html").content_string == "<h1>server1's page</h1>\n"


def test_the_gray_faults_apply_heal_and_leave_nothing_behind(seed_lab):
    """Each gray primitive for real (issue 27), on the nodes the scenarios aim at: its effect
    seen on the node, its heal, and nothing left after it. The scenarios themselves (bounds,
    what the client saw) are `test.failover --scenario gray`'s."""

    def status(node: str) -> str:
        return seed_lab.remote.run(
            node, f"curl -s -o /dev/null -m 2 -w %{{http_code}} http://{node_address(node)}/"
        ).stdout

    def node_address(node: str) -> str:
        return str(seed_lab.lab.nodes[node].address)

    def settles(fault: Fault, bound: float = 15) -> str:
        deadline = time.monotonic() + bound
        while (left := fault.remains(seed_lab)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left

    error = Fault("realserver-error", "server1")
    error.apply(seed_lab)
    assert status("server1") == "500" and "answerer.pid" in error.remains(seed_lab)
    error.heal(seed_lab)
    assert settles(error) == "" and status("server1") == "200"

    hang = Fault("pause", "server1", "nginx")
    hang.apply(seed_lab)
    assert "nginx on server1 still stopped" in hang.remains(seed_lab) and status("server1") != "200"
    hang.heal(seed_lab)
    assert hang.remains(seed_lab) == "" and status("server1") == "200"

    deleted = Fault("vip-deleted", "server3")
    deleted.apply(seed_lab)  # keepalived notices the deletion and takes the VIP back by itself
    assert settles(deleted) == ""
    reload = Fault("reload", "server3")
    reload.apply(seed_lab)
    assert settles(reload) == "" and {row.name for row in seed_lab.status() if row.vips} == {"server3"}
    assert "FAILED" not in requests_through_vip(seed_lab, 4)


@pytest.mark.parametrize(
    ("fault", "left"),
    [
        pytest.param(Fault("vrrp-blocked", "server4"), "firewall rules left on server4", id="vrrp-blocked"),
        pytest.param(Fault("director-partition", "server3"), "firewall rules left on server3", id="partition"),
        pytest.param(Fault("advert-loss", "server3", seconds=0.1, amount=50), "qdisc or filter left", id="loss"),
        pytest.param(Fault("multicast-dropped", "server3"), "filter(s) left on the lab switch", id="multicast"),
        pytest.param(Fault("one-way", "server3"), "filter(s) left on the lab switch", id="one-way"),
        pytest.param(Fault("garp-lost", "server3", seconds=0.1), "router-like ARP left on client", id="garp-lost"),
    ],
)
def test_a_network_fault_is_seen_while_it_holds_and_nothing_of_it_after_its_heal(seed_lab, fault, left):
    """Each network primitive for real (issue 26): while it holds, its `remains` names what it
    added (the node's firewall rules, qdisc, the switch's filters, the client's router-like
    ARP), so a heal that left it behind would be caught; after its heal, nothing is left and
    the VIP is back on its MASTER alone. The scenarios themselves are test.failover's."""
    fault.apply(seed_lab)
    try:
        held = fault.remains(seed_lab)
    finally:
        fault.heal(seed_lab)
    assert left in held, f"{fault.applied}: {held!r} while it holds"
    assert fault.remains(seed_lab) == "", fault.healed
    deadline = time.monotonic() + 30
    while {row.name for row in seed_lab.status() if row.vips} != {"server3"} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert {row.name for row in seed_lab.status() if row.vips} == {"server3"}


def test_fault_verbs_move_the_vip_and_bring_it_back(seed_lab, seed_file):
    """Last in the module: it disturbs the lab, and leaves it as it found it.

    Bounds are VRRP's (3 x advert_int + skew = 3.8 s for the seed's BACKUP) plus a wide
    margin for a shared machine; the failover measurements themselves are issue 5's.
    """

    def holders() -> set[str]:
        return {row.name for row in seed_lab.status() if row.vips}

    def wait_for(expected: set[str], bound: float = 15) -> set[str]:
        deadline = time.monotonic() + bound
        while (seen := holders()) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        return seen

    seed_lab.stop_service("server3", "keepalived")
    assert wait_for({"server4"}) == {"server4"}, "BACKUP did not take the VIP after a clean stop"
    seed_lab.start_service("server3", "keepalived")
    assert wait_for({"server3"}) == {"server3"}, "MASTER did not preempt after keepalived came back"
    seed_lab.cut_link("server3")
    # Cut off, server3 is unreachable (ssh crosses the same switch); server4 takes the VIP.
    assert wait_for({"server4"}) == {"server4"}, "BACKUP did not take the VIP after the MASTER's link was cut"
    assert {row.name: row.vrrp for row in seed_lab.status()}["server3"] == "unreachable"
    seed_lab.restore_link("server3")
    assert wait_for({"server3"}) == {"server3"}, "one MASTER again once the link is back"
    seed_lab.crash("server3")
    assert wait_for({"server4"}) == {"server4"}, "BACKUP did not take the VIP after the MASTER crashed"
    started = time.monotonic()
    verb = invoke("fault.cut", "server3", "--lab", str(seed_file))
    assert verb.returncode != 0 and "server3 is down" in verb.stderr and "Traceback" not in verb.stderr, verb.stderr
    assert time.monotonic() - started < 10, "a fault verb on a crashed node must answer at once"
    seed_lab.restart("server3")
    assert wait_for({"server3"}) == {"server3"}, "MASTER did not take the VIP back after its restart"
    assert "FAILED" not in requests_through_vip(seed_lab, 4)


def _up_fails_with(monkeypatch, tmp_path, name: str, edited: str, old: str, new: str) -> str:
    """lab.up of a seed lab one of whose rendered files is edited (old -> new): the error it
    fails with; and nothing of the lab is left."""
    real = render.render

    def broken(lab):
        files = real(lab)
        files[edited] = files[edited].replace(old, new)
        return files

    monkeypatch.setattr(render, "render", broken)
    provider = LocalProvider(spec.load(lab_file(tmp_path, name)), progress=lambda _: None)
    with pytest.raises(ProviderError) as caught:
        provider.up()
    assert_clean(name)
    return str(caught.value)


def test_a_node_whose_role_breaks_fails_lab_up_naming_the_node_and_the_step(builds, tmp_path, monkeypatch):
    """server1's nginx listens on the wrong port: it starts, but does not answer. Up means
    working: lab.up names the node and the step, shows its log, and leaves nothing behind."""
    conf = "server1/usr/local/nginx/conf/nginx.conf"
    message = _up_fails_with(monkeypatch, tmp_path, "t-broken-role", conf, "listen       80;", "listen       8080;")
    assert message.startswith("node server1 failed at step 'nginx answering' of its role"), message
    assert "boot.log" in message and "==> nginx started" in message


def test_a_director_whose_vrrp_instance_cannot_run_is_not_up_and_says_why(builds, tmp_path, monkeypatch):
    """An operator's `interface: ens33` passed validation and the config test, and lab.up
    reported a director "role verified" while its keepalived ran no VRRP instance. Now the
    director's role waits for its instances to leave FAULT, and the failure quotes keepalived."""
    conf = "server4/etc/keepalived/keepalived.conf"
    message = _up_fails_with(monkeypatch, tmp_path, "t-no-nic", conf, "interface eth0", "interface ens99")
    # keepalived either stays up with no instance running or gives up: either way not ready,
    # and its own line naming the interface is in the message
    assert message.startswith(
        ("node server4 failed at step 'VRRP instances out of FAULT'", "node server4 failed at step 'keepalived running")
    ), message
    assert "keepalived's log says:" in message and "ens99" in message, message


def test_a_lab_whose_nic_is_named_as_in_production_boots(builds, tmp_path):
    """vrrp.interface: ens33 (a production name): every node's lab NIC carries it."""
    text = lab_file(tmp_path, "t-ens33").read_text().replace("interface: eth0", "interface: ens33")
    file = tmp_path / "ens33.yaml"
    file.write_text(text)
    provider = LocalProvider(spec.load(file), progress=lambda _: None)
    try:
        provider.up()
        assert {row.name for row in provider.status() if row.vips} == {"server3"}
        assert "ens33" in provider.remote.run("server3", "ip -o link show ens33").stdout
        assert "FAILED" not in requests_through_vip(provider, 4)
    finally:
        provider.down()
    assert_clean("t-ens33")


def test_two_checkouts_run_the_same_lab_side_by_side(seed_lab, tmp_path):
    """Another checkout (another state directory) boots a lab of the same name: both serve,
    and tearing one down leaves the other serving."""
    other = tmp_path / "other-checkout"
    (other / "cache").mkdir(parents=True)
    (other / "cache" / "builds").symlink_to(paths.builds())  # its own state, the same compiled daemons
    file = lab_file(tmp_path, seed_lab.lab.name)
    env = {"HALAB_HOME": str(other)}
    try:
        result = invoke("lab.up", "--lab", str(file), env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        pages = invoke("lab.ssh", "client", "--lab", str(file), "--", "curl -s -m 2 http://172.25.1.100/", env=env)
        assert pages.stdout.strip() in ("<h1>server1's page</h1>", "<h1>server2's page</h1>"), pages.stderr
        assert "FAILED" not in requests_through_vip(seed_lab, 4)
    finally:
        assert invoke("lab.down", "--lab", str(file), env=env).returncode == 0
    assert all(row.up for row in seed_lab.status())
    assert "FAILED" not in requests_through_vip(seed_lab, 4)
