"""The Vagrant lab without a hypervisor: the real `vagrant validate` on the Vagrantfile for
each shipped lab (and what it defines matches the lab file), and the provider's commands
and parsing through python-vagrant against a stand-in `vagrant` that replays real output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from halab import paths, render, spec
from halab.errors import ProviderError
from halab.paths import LabPaths
from halab.providers.vagrant import libvirt
from halab.providers.vagrant.libvirt import Libvirt
from halab.providers.vagrant.provider import VagrantProvider, ssh_config_as_root


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "home"))
    return tmp_path


needs_vagrant = pytest.mark.skipif(
    not shutil.which("vagrant"), reason="vagrant is not installed (./bootstrap installs Debian's)"
)


def machines(provider: VagrantProvider, home) -> list[dict]:
    """The machines the real `vagrant validate` sees in the Vagrantfile for the provider's lab
    (HALAB_VAGRANT_DUMP): name, address, role, libvirt domain, box, networks, resources."""
    render.write(render.render(provider.lab), provider.paths.rendered)
    env = {**provider.environment(), "HALAB_VAGRANT_DUMP": "1", "VAGRANT_HOME": str(home / "vagrant.d")}
    env.pop("VAGRANT_DEFAULT_PROVIDER")  # --ignore-provider: no hypervisor plugin here
    result = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=paths.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "validated successfully" in result.stdout, result.stdout + result.stderr
    return json.loads(
        next(line for line in result.stdout.splitlines() if line.startswith("HALAB_MACHINES")).split(" ", 1)[1]
    )


@needs_vagrant
@pytest.mark.parametrize("lab_file", paths.shipped_labs(), ids=lambda path: path.stem)
def test_vagrant_validates_the_vagrantfile_and_defines_the_lab_files_machines(home, lab_file):
    lab = spec.load(lab_file)
    provider = VagrantProvider(lab, progress=lambda _: None, hypervisor="libvirt")
    defined = machines(provider, home)
    assert [(m["name"], m["address"], m["role"]) for m in defined] == [
        (name, str(node.address), node.role) for name, node in lab.nodes.items()
    ]
    assert [m["domain"] for m in defined] == [provider.paths.vm(name) for name in lab.nodes]
    assert {m["box"] for m in defined} == {lab.box}
    assert sum(m["memory"] for m in defined) <= 6 * 1024  # five VMs on an 8 GB laptop
    # Found by the first real `vagrant up`: libvirt refuses a network whose netmask is "24".
    # NAT: real servers on the NAT network alone, directors on both (their second NIC there).
    front, back = [provider.paths.network, str(lab.subnet.netmask)], [provider.paths.nat_network]
    for machine, (name, node) in zip(defined, lab.nodes.items(), strict=True):
        if lab.nat and node.role == "realserver":
            expected = [[back[0], str(node.address), str(lab.nat.subnet.netmask)]]
        elif lab.nat and name in lab.nat.directors:
            expected = [
                [front[0], str(node.address), front[1]],
                [back[0], str(lab.nat.directors[name]), str(lab.nat.subnet.netmask)],
            ]
        else:
            expected = [[front[0], str(node.address), front[1]]]
        assert machine["networks"] == expected, (name, machine["networks"])
    # Found by reading the Vagrantfile for the real run: an uploaded script cannot source lib.sh beside it.
    assert all(m["provision"][-1].startswith(f"sh {paths.GUEST_PROJECT}/provision/node.sh ") for m in defined)


@needs_vagrant
def test_box_commands_work_in_the_checkout_without_a_lab(home):
    # Found by the first real pipeline: `vagrant box add` (as the README says, from the
    # checkout) loads the Vagrantfile too, which refused to load without a lab.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALAB_")} | {"VAGRANT_HOME": str(home / "vd")}
    result = subprocess.run(["vagrant", "box", "list"], cwd=paths.ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(["vagrant", "status"], cwd=paths.ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "HALAB_LAB_JSON is not set" in result.stdout + result.stderr


STATUS = """1795560000,server3,metadata,provider,libvirt
1795560000,server3,provider-name,libvirt
1795560000,server3,state,running
1795560000,server3,state-human-short,running
1795560000,server4,provider-name,libvirt
1795560000,server4,state,shutoff
1795560000,server4,state-human-short,shutoff
"""
BOXES = """1795560000,,box-name,halab/rocky-9
1795560000,,box-provider,libvirt
1795560000,,box-version,1795560000.0.0
"""
SSH_CONFIG = """Host {name}
  HostName 192.168.121.17
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /labs/.vagrant/machines/{name}/libvirt/private_key
  IdentitiesOnly yes
  LogLevel FATAL
"""


@pytest.fixture
def fake_vagrant(tmp_path, monkeypatch):
    """A `vagrant` on PATH that logs its arguments and prints recorded machine-readable output."""
    log = tmp_path / "argv.log"
    script = tmp_path / "bin" / "vagrant"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import sys
from pathlib import Path
args = sys.argv[1:]
with open({str(log)!r}, "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:1] == ["status"]:
    print({STATUS!r})
elif args[:2] == ["box", "list"]:
    print({BOXES!r} if __import__("os").path.exists({str(tmp_path / "has-box")!r}) else "")
elif args[:1] == ["ssh-config"]:
    print({SSH_CONFIG!r}.format(name=args[1]))
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    return log


def provider(home) -> VagrantProvider:
    lab = spec.load(paths.ROOT / "labs" / "seed.yaml")
    made = VagrantProvider(lab, progress=lambda _: None, hypervisor="libvirt")
    (made.paths.root / "vagrant").mkdir(parents=True)
    render.write(render.render(made.lab), made.paths.rendered)
    return made


def test_the_lab_runs_on_the_second_nic_and_the_rendered_files_say_so(home):
    made = provider(home)
    assert made.lab.vrrp.interface == "eth1"
    assert json.loads((made.paths.rendered / "lab.json").read_text())["interface"] == "eth1"
    assert "interface eth1" in (made.paths.rendered / "server3/etc/keepalived/keepalived.conf").read_text()


def test_a_nat_lab_puts_the_gateway_on_the_directors_third_nic(home):
    made = VagrantProvider(spec.load(paths.ROOT / "labs" / "nat.yaml"), progress=lambda _: None, hypervisor="libvirt")
    render.write(render.render(made.lab), made.paths.rendered)
    assert json.loads((made.paths.rendered / "lab.json").read_text())["nat"]["interface"] == "eth2"
    assert "172.25.2.100 dev eth2" in (made.paths.rendered / "server3/etc/keepalived/keepalived.conf").read_text()


def test_a_cut_link_cuts_every_lab_nic_and_never_the_management_one(home):
    nat = VagrantProvider(spec.load(paths.ROOT / "labs" / "nat.yaml"), progress=lambda _: None, hypervisor="libvirt")
    assert nat.lab_nics("server3") == ["eth1", "eth2"]  # a NAT director: the lab and the real servers' network
    assert nat.lab_nics("server1") == ["eth1"]  # a NAT real server sits on the NAT network alone
    assert provider(home).lab_nics("server3") == ["eth1"]


def test_the_baked_box_is_used_when_present_else_the_public_one_compiling(home, fake_vagrant, tmp_path):
    made = provider(home)
    assert made.box() == ("rockylinux/9", True)
    (tmp_path / "has-box").touch()
    assert made.box() == ("halab/rocky-9", False)


def test_status_crash_and_restart_become_the_right_commands(home, fake_vagrant, fake_ssh, monkeypatch):
    made = provider(home)
    assert not made.running()  # server4 is shut off in the recorded status
    # Found by the first failover run on VMs: vagrant-libvirt's `halt --force` shuts the
    # guest down cleanly (a last VRRP advert) instead of pulling the plug.
    unplugged = []
    monkeypatch.setattr(Libvirt, "power_off", lambda self, domain: unplugged.append(domain))
    monkeypatch.setattr(Libvirt, "running", lambda self, domain: True)  # what virsh domstate says of server3
    monkeypatch.setenv("HALAB_ACCELERATOR", "tcg")
    made.crash("server3")
    made.restart("server3")
    calls = fake_vagrant.read_text().splitlines()
    assert "status --machine-readable" in calls and unplugged == [made.paths.vm("server3")]
    assert "up server3 --no-provision" in calls and not any(call.startswith("halt") for call in calls)
    # the restart ends once the lab's ssh reaches the VM: its key exchange is the restart's cost
    assert ("server3", "true") in fake_ssh.calls()
    boxed = VagrantProvider(made.lab, progress=lambda _: None, hypervisor="virtualbox")
    boxed.crash("server3")
    assert "halt server3 --force" in fake_vagrant.read_text().splitlines()


def test_a_failing_vagrant_in_a_fault_verb_is_a_provider_error(home, fake_vagrant, monkeypatch):
    made = provider(home)
    monkeypatch.setenv("HALAB_ACCELERATOR", "tcg")
    fake_vagrant.parent.joinpath("bin", "vagrant").write_text("#!/bin/sh\nexit 1\n")
    with pytest.raises(ProviderError, match="`vagrant up server3` failed"):
        made.restart("server3")


def test_the_ssh_config_logs_in_as_root_with_each_vms_key(home, fake_vagrant):
    made = provider(home)
    made._write_ssh_config()
    text = LabPaths(made.lab.name).ssh_config.read_text()
    assert text.count("\n  User root") == len(made.lab.nodes) and "User vagrant" not in text
    assert "IdentityFile /labs/.vagrant/machines/server3/libvirt/private_key" in text
    assert "ControlMaster auto" in text
    assert ssh_config_as_root(SSH_CONFIG.format(name="x")).splitlines()[2] == "  User root"


def test_with_a_private_libvirt_vagrant_and_ssh_run_inside_the_labs_namespace(
    home, fake_vagrant, fake_ssh, tmp_path, monkeypatch
):
    made = provider(home)
    wrapper = tmp_path / "bin" / "in-namespace"
    wrapper.write_text(f'#!/bin/sh\necho "in-namespace $*" >> {fake_vagrant}\nexec "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(Libvirt, "prefix", property(lambda self: [str(wrapper)]))
    monkeypatch.setenv("HALAB_ACCELERATOR", "tcg")
    made.restart("server3")
    assert "/bin/vagrant up server3 --no-provision\n" in fake_vagrant.read_text().split("in-namespace ", 1)[1]
    made._write_ssh_config()
    text = made.paths.ssh_config.read_text()
    assert f"ProxyCommand ip netns exec {made.paths.libvirt_netns} socat - TCP:%h:%p" in text


def test_without_a_private_libvirt_ssh_goes_straight_to_the_vms(home, fake_vagrant, monkeypatch):
    made = provider(home)
    monkeypatch.setattr(Libvirt, "prefix", property(lambda self: []))
    made._write_ssh_config()
    assert "ProxyCommand" not in made.paths.ssh_config.read_text()


def test_teardown_destroys_the_vms_then_what_libvirt_holds_then_the_private_libvirt(home, fake_vagrant, monkeypatch):
    made = provider(home)
    calls = []
    monkeypatch.setattr(Libvirt, "remove_domains", lambda self, prefix, net: calls.append(("remove", prefix, net)))
    monkeypatch.setattr(Libvirt, "stop", lambda self: calls.append(("stop", self.netns)))
    monkeypatch.setattr(Libvirt, "leftovers", lambda self, prefix: [])
    VagrantProvider.teardown(made.paths)
    assert "destroy --force" in fake_vagrant.read_text()
    assert calls == [
        ("remove", made.paths.vm(), made.paths.network),
        ("remove", made.paths.vm(), made.paths.nat_network),
        ("stop", made.paths.libvirt_netns),
    ]
    assert not made.paths.vagrant.exists()
    VagrantProvider.teardown(made.paths)  # idempotent: nothing left, nothing fails


def teardown_calls(monkeypatch, lab: LabPaths) -> list[tuple[str, str]]:
    """(VM prefix, network) of every removal the Vagrant teardown of lab asks of libvirt."""
    removed: list[tuple[str, str]] = []
    monkeypatch.setattr(Libvirt, "remove_domains", lambda self, prefix, network: removed.append((prefix, network)))
    monkeypatch.setattr(Libvirt, "stop", lambda self: None)
    monkeypatch.setattr(Libvirt, "leftovers", lambda self, prefix: [])
    VagrantProvider.teardown(lab)
    return removed


@needs_vagrant
def test_tearing_down_lab_x_leaves_the_networks_of_a_lab_called_x_nat_alone(home, monkeypatch):
    # Bug: lab x's NAT network was named as lab x-nat's lab network, so `lab.down --name x
    # --provider vagrant` destroyed the network of a running lab called x-nat.
    nat = spec.load(paths.ROOT / "labs" / "nat.yaml").model_copy(update={"name": "x-nat"})
    running = machines(VagrantProvider(nat, progress=lambda _: None, hypervisor="libvirt"), home)
    its_networks = {network[0] for machine in running for network in machine["networks"]}
    removed = teardown_calls(monkeypatch, LabPaths("x"))
    assert removed and not its_networks & {network for _, network in removed}


@needs_vagrant
def test_one_checkouts_teardown_never_touches_another_checkouts_vms_or_networks(tmp_path, monkeypatch):
    # Bug: VM and network names carried no checkout id, so on a shared libvirt `lab.down` in
    # one checkout destroyed the VMs and networks of the same lab booted from another.
    lab = spec.load(paths.ROOT / "labs" / "nat.yaml")
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "their-checkout"))
    theirs = machines(VagrantProvider(lab, progress=lambda _: None, hypervisor="libvirt"), tmp_path)
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "my-checkout"))
    removed = teardown_calls(monkeypatch, LabPaths(lab.name))
    their_networks = {network[0] for machine in theirs for network in machine["networks"]}
    assert removed and not their_networks & {network for _, network in removed}
    assert [m["domain"] for m in theirs if any(m["domain"].startswith(prefix) for prefix, _ in removed)] == []


def test_another_labs_private_libvirt_is_named_with_the_command_that_stops_it(home, monkeypatch):
    # Bug: the hint said `--name <checkout>-<lab>`, which names no lab.
    owner = LabPaths("seed")
    monkeypatch.setattr(libvirt, "answering", lambda path=libvirt.SOCKET: True)
    monkeypatch.setattr(libvirt, "_netns_names", lambda: [owner.libvirt_netns])
    monkeypatch.setattr(libvirt, "_netns_pids", lambda name: [1])
    monkeypatch.setattr(libvirt, "_command", lambda pid: "libvirtd")
    with pytest.raises(ProviderError, match=r"`invoke lab\.down --provider vagrant --name seed`$"):
        Libvirt(LabPaths("other")).ensure()
    monkeypatch.setenv("HALAB_HOME", str(home / "another-checkout"))
    with pytest.raises(ProviderError, match=r"--name seed` in the checkout that started it \(checkout id "):
        Libvirt(LabPaths("other")).ensure()


def test_services_log_to_the_journal_but_nginx_to_its_own_file(home):
    made = VagrantProvider(spec.load(), progress=lambda _: None, hypervisor="libvirt")
    assert made.log_command("keepalived") == "journalctl -u keepalived --no-pager"
    assert made.log_command("smtpd") == "journalctl -u halab-smtpd --no-pager"
    assert made.log_command("nginx") == "cat /var/log/nginx/error.log"


def test_the_host_keeps_qemus_log_of_a_vm_on_libvirt_only(home):
    lab = spec.load()
    on_libvirt = VagrantProvider(lab, progress=lambda _: None, hypervisor="libvirt")
    assert on_libvirt.host_logs("server3") == [Path(f"/var/log/libvirt/qemu/{on_libvirt.paths.vm('server3')}.log")]
    assert VagrantProvider(lab, progress=lambda _: None, hypervisor="virtualbox").host_logs("server3") == []
