"""The lab file: defaults, every validation rule, and messages a person can act on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from halab import paths, spec
from halab.errors import SpecError, UsageError

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))
LABS = Path(__file__).resolve().parents[2] / "labs"


def test_default_lab_is_the_seed_exactly():
    lab = spec.load()
    assert {n: (str(x.address), x.role, x.state, x.priority) for n, x in lab.nodes.items()} == {
        "server1": ("172.25.1.101", "realserver", None, None),
        "server2": ("172.25.1.102", "realserver", None, None),
        "server3": ("172.25.1.1", "director", "MASTER", 100),
        "server4": ("172.25.1.2", "director", "BACKUP", 50),
        "client": ("172.25.1.250", "client", None, None),
    }
    (service,) = lab.virtual_services
    assert (str(service.vip), service.port, service.protocol, service.lb_algo, service.lb_kind) == (
        "172.25.1.100",
        80,
        "TCP",
        "rr",
        "DR",
    )
    check = service.health_check
    assert (check.type, check.port, check.connect_timeout, check.delay_loop) == ("TCP_CHECK", 80, 3, 3)
    assert (
        lab.vrrp.virtual_router_id,
        lab.vrrp.advert_int,
        lab.vrrp.authentication.auth_type,
        lab.vrrp.authentication.auth_pass,
    ) == (51, 1, "PASS", "1111")
    assert (lab.notification.to, lab.notification.from_, lab.notification.smtp_server) == (
        ("root@localhost",),
        "keepalived@localhost",
        "client",
    )  # the write-up's 127.0.0.1 reads no mail
    assert (lab.mode, lab.arp_suppression, lab.versions.keepalived, lab.versions.nginx) == (
        "active-backup",
        "arptables",
        "2.2.7",
        "1.17.8",
    )


def test_model_defaults_match_the_seed_file():
    """A minimal lab file gets the seed's settings for everything it leaves out."""
    minimal = spec.parse(
        "name: seed\nsubnet: 172.25.1.0/24\nnodes:\n"
        "  server1: {address: 172.25.1.101, role: realserver}\n"
        "  server2: {address: 172.25.1.102, role: realserver}\n"
        "  server3: {address: 172.25.1.1, role: director, state: MASTER, priority: 100}\n"
        "  server4: {address: 172.25.1.2, role: director, state: BACKUP, priority: 50}\n"
        "  client: {address: 172.25.1.250, role: client}\n"
        "virtual_services:\n  - vip: 172.25.1.100\n    real_servers: {server1: {}, server2: {}}\n"
        "notification: {smtp_server: client}\n"
    )
    assert minimal == spec.load()


def _expectation(path: Path) -> str:
    """A broken file's `# expect:` line; the files about encodings are not all UTF-8 (utf16.yaml is UTF-16)."""
    data = path.read_bytes()
    text = data.decode("utf-16") if data[:2] == b"\xff\xfe" else data.decode("utf-8", "replace")
    return text.splitlines()[0].removeprefix("# expect: ")


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_lab_gives_its_specific_message(path):
    with pytest.raises(SpecError) as caught:
        spec.load(path)
    assert _expectation(path) in str(caught.value)
    assert len(str(caught.value)) < 2000, "an error must not repeat a hostile value whole"


def test_there_are_at_least_ten_distinct_broken_files_with_distinct_messages():
    messages = {_expectation(p) for p in BROKEN}
    assert len(messages) == len(BROKEN) >= 10


def test_all_problems_are_reported_at_once():
    text = (LABS / "seed.yaml").read_text()
    text = text.replace("priority: 100}", "priority: 300}").replace("virtual_router_id: 51", "virtual_router_id: 0")
    text = text.replace("lb_algo: rr ", "lb_algo: fastest ")
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    paths = [p.path for p in caught.value.problems]
    assert paths == ["nodes.server3.priority", "virtual_services.0.lb_algo", "vrrp.virtual_router_id"]


def test_all_cross_field_problems_are_reported_at_once():
    text = (LABS / "seed.yaml").read_text()
    text = text.replace("172.25.1.250", "10.0.0.250").replace("state: BACKUP", "state: MASTER")
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    assert [p.path for p in caught.value.problems] == ["nodes.client.address", "nodes"]


def test_wrong_types_are_not_coerced():
    text = (LABS / "seed.yaml").read_text().replace("priority: 100}", "priority: '100'}")
    with pytest.raises(
        SpecError, match=r"nodes\.server3\.priority: '100' is not allowed: Input should be a valid integer"
    ):
        spec.parse(text)


def test_unquoted_numeric_password_is_read_as_text():
    lab = spec.parse((LABS / "seed.yaml").read_text().replace('auth_pass: "1111"', "auth_pass: 1111"))
    assert lab.vrrp.authentication.auth_pass == "1111"


def test_non_mapping_and_unreadable_files_are_clear(tmp_path):
    with pytest.raises(SpecError, match=r"a lab file is a YAML mapping \(see labs/seed.yaml\), got a YAML list"):
        spec.parse("- a\n- b\n")
    with pytest.raises(SpecError, match="got an empty file"):
        spec.parse("")
    with pytest.raises(SpecError, match="cannot read the lab file: No such file or directory"):
        spec.load(tmp_path / "missing.yaml")


def test_an_oversized_or_endless_file_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: seed\n" + "# padding\n" * 30000)
    for path in (big, Path("/dev/zero")):
        with pytest.raises(SpecError, match=r"larger than 262144 bytes \(256 KiB\)"):
            spec.load(path)
    with pytest.raises(SpecError, match="larger than 262144 bytes"):
        spec.parse("router_id: " + "x" * 1_000_000)


def test_a_long_hostile_value_is_cut_in_the_error():
    text = (LABS / "seed.yaml").read_text().replace("router_id: LVS_DEVEL", "router_id: " + "A" * 200_000)
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    message = str(caught.value)
    assert "(200000 characters) is not allowed" in message and len(message) < 500


def test_hundreds_of_problems_are_summarised():
    text = (LABS / "seed.yaml").read_text() + "".join(f"extra{i}: 1\n" for i in range(300))
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    problems = caught.value.problems
    assert len(problems) == spec.MAX_PROBLEMS + 1
    assert str(problems[-1]) == "... and 200 more problem(s) not shown"


def test_a_utf8_byte_order_mark_is_fine():
    assert spec.parse(b"\xef\xbb\xbf" + (LABS / "seed.yaml").read_bytes()) == spec.load()


def test_a_date_is_read_as_text_not_as_a_timestamp():
    lab = spec.parse((LABS / "seed.yaml").read_text().replace("router_id: LVS_DEVEL", "router_id: 2001-12-14"))
    assert lab.router_id == "2001-12-14"


def test_advert_int_takes_whole_and_centisecond_values_up_to_the_limits():
    seed = (LABS / "seed.yaml").read_text()
    assert spec.parse(seed.replace("advert_int: 1 ", "advert_int: 255 ")).vrrp.advert_int == 255
    v3 = seed.replace("version: 2", "version: 3").replace(
        'authentication: {auth_type: PASS, auth_pass: "1111"}', "authentication: null"
    )
    assert spec.parse(v3.replace("advert_int: 1 ", "advert_int: 40.95 ")).vrrp.advert_int == 40.95
    # 0.29 * 100 is 28.999999999999996 in floating point: still a whole number of centiseconds.
    assert spec.parse(v3.replace("advert_int: 1 ", "advert_int: 0.29 ")).vrrp.advert_int == 0.29


# Validates one file in a fresh interpreter and prints how much its peak memory grew (KiB).
PEAK_SCRIPT = """
import resource, sys
from halab import paths, spec
from halab.errors import SpecError, UsageError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    spec.load(sys.argv[1])
except SpecError:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def _hostile_files(tmp_path: Path) -> dict[str, tuple[Path, int]]:
    """Hostile files and the most their validation may add to peak memory (KiB)."""
    keys = tmp_path / "keys.yaml"  # 25 000 unknown keys just under the size limit: the costliest found
    keys.write_text((LABS / "seed.yaml").read_text() + "".join(f"k{i}: 1\n" for i in range(25_000)))
    assert keys.stat().st_size < spec.MAX_FILE_BYTES
    return {
        "alias bomb": (Path(__file__).parent / "broken" / "alias-bomb.yaml", 4 * 1024),
        "25 000 unknown keys": (keys, 96 * 1024),
    }


def test_hostile_files_cannot_exhaust_memory(tmp_path):
    """A 3 KB alias bomb expands to gigabytes if YAML follows it; refused at its first anchor."""
    for name, (path, most) in _hostile_files(tmp_path).items():
        run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True, check=True)
        assert int(run.stdout) < most, f"{name}: peak memory grew by {int(run.stdout)} KiB"


def test_the_client_and_access_addresses_are_the_labs_own():
    """The facts every part reads off the model: the first client, each switch's last usable address."""
    lab = spec.parse(
        (LABS / "nat.yaml").read_text().replace("172.25.1.0/24", "10.9.0.0/22").replace("172.25.1.", "10.9.0.")
    )
    assert (lab.client, str(lab.access_address), str(lab.nat.access_address)) == (
        "client",
        "10.9.3.254",
        "172.25.2.254",
    )


def test_a_lab_without_a_client_says_so_when_one_is_needed():
    text = "\n".join(line for line in (LABS / "seed.yaml").read_text().splitlines() if "client" not in line)
    with pytest.raises(UsageError, match="'seed' has no node with role client"):
        _ = spec.parse(text).client


def test_every_lab_file_is_shipped_the_seed_first():
    """The one list the acceptance suite, `vagrant validate` and the config tier prove."""
    shipped = paths.shipped_labs()
    assert shipped[0] == paths.DEFAULT_LAB and sorted(shipped) == sorted(LABS.glob("*.yaml"))
    assert all(spec.load(path) for path in shipped)


@pytest.mark.parametrize("name", ["localhost", "all", "ungrouped", "directors", "realservers", "clients", "switch"])
def test_a_node_may_not_take_a_name_ansible_or_the_pictures_give_a_meaning(name):
    """A real server called localhost made `hosts: localhost` and `delegate_to: localhost` run
    over ssh on an address the lab file chose; `all` shrank to one host; `directors` received
    the directors' plays; `switch` merged with the lab switch in the DOT picture."""
    text = (paths.LABS / "seed.yaml").read_text().replace("server1", name)
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    assert f"nodes.{name}" in str(caught.value) and "reserved: all, clients, directors" in str(caught.value)


def test_the_reserved_names_cover_every_group_the_inventory_writes():
    from halab import inventory, rules

    lab = spec.load()
    assert set(inventory.groups(lab)) <= set(rules.RESERVED_NAMES)
    assert set(rules.GROUPS) == set(get_args(spec.Role)), "every role has its inventory group"


def test_a_vrrp_instance_holds_up_to_255_addresses_the_nat_gateway_included():
    """keepalived 2.2.7's -t is silent on 255 addresses in one instance and reports 256."""
    broken = Path(__file__).parent / "broken"

    def one_vip_fewer(name: str) -> str:
        lines = (broken / name).read_text().splitlines(keepends=True)
        first = next(i for i, line in enumerate(lines) if line.startswith("  - {vip: "))
        return "".join(lines[:first] + lines[first + 1 :])

    assert len(spec.parse(one_vip_fewer("too-many-vips.yaml")).vips) == 255
    nat = spec.parse(one_vip_fewer("nat-too-many-addresses.yaml"))
    assert (len(nat.vips), nat.method) == (254, "NAT")


@pytest.mark.parametrize("subnet", ["10.0.3.0/24", "172.16.0.0/12", "192.168.120.0/24", "192.168.122.0/23"])
def test_any_private_subnet_clear_of_the_hypervisors_networks_is_a_lab_subnet(subnet):
    seed = (LABS / "seed.yaml").read_text()
    lab = spec.parse(seed.replace("subnet: 172.25.1.0/24", f"subnet: {subnet}").replace("172.25.1.", subnet[:-4]))
    assert str(lab.subnet) == subnet


def test_the_local_guest_names_its_nics_by_role_so_either_order_of_names_validates():
    """vec0 becomes vrrp.interface, then vec1 nat.interface: eth1 then eth0 boots (only a first
    name of vec1, the second NIC's until then, cannot: see broken/interface-guest-nic.yaml)."""
    text = (LABS / "nat.yaml").read_text().replace("interface: eth1 ", "interface: eth0 ")
    lab = spec.parse(text.replace("notification:", "vrrp: {interface: eth1}\nnotification:"))
    assert (lab.vrrp.interface, lab.nat.interface) == ("eth1", "eth0")
