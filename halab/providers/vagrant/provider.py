"""The Vagrant provider: the same lab as five VMs (libvirt or VirtualBox), via python-vagrant.

The Vagrantfile reads the lab.json this provider renders; each lab keeps its own
Vagrant state (VAGRANT_DOTFILE_PATH), so labs of different names live side by side.
What differs from the local lab stays here: the lab NIC is eth1 (both hypervisors add
a management NIC first), services are systemd units, a crash is a forced power-off.
With libvirt, where libvirt lives (the host's service, or a private one in the lab's
network namespace) is libvirt.py's business: this module only runs vagrant under its
prefix and points ssh into the namespace; KVM or TCG is halab.accelerator's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import vagrant
from halab import accelerator, durations, environment, paths, pins, render, sources
from halab.errors import ProviderError
from halab.paths import LabPaths
from halab.providers.base import NGINX_ERROR_LOG, Progress, Provider, Requirement
from halab.providers.vagrant.libvirt import SOCKET, Libvirt, answering
from halab.remote import client_options
from halab.spec import Lab

LAB_NIC = "eth1"
# A NAT director's NIC on the real servers' network: the third, after management and lab.
NAT_NIC = "eth2"
UNITS = {"keepalived": "keepalived", "nginx": "nginx", "smtpd": "halab-smtpd"}
# Where libvirt's QEMU driver logs each VM (the host's libvirt and a private one alike).
QEMU_LOGS = Path("/var/log/libvirt/qemu")


class VagrantProvider(Provider):
    name = "vagrant"
    converge_timeout = 60.0

    def __init__(self, lab: Lab, progress: Progress = print, hypervisor: str | None = None) -> None:
        super().__init__(lab, progress)
        self.hypervisor = hypervisor or environment.vagrant_provider() or _default_hypervisor()
        self.libvirt = Libvirt(self.paths)

    @classmethod
    def as_run(cls, lab: Lab) -> Lab:
        """The lab with its VRRP interface on the VMs' second NIC (and a NAT director's
        gateway on its third)."""
        update: dict[str, object] = {"vrrp": lab.vrrp.model_copy(update={"interface": LAB_NIC})}
        if lab.nat is not None:
            update["nat"] = lab.nat.model_copy(update={"interface": NAT_NIC})
        return lab.model_copy(update=update)

    # --- vagrant itself ---------------------------------------------------------------

    def box(self) -> tuple[str, bool]:
        """(box, compile from source?): the lab's baked box when present, else the public one."""
        present = {(b.name, b.provider) for b in self._vagrant().box_list()}
        if (self.lab.box, self.hypervisor) in present:
            return self.lab.box, False
        return self.lab.box_fallback, True

    def environment(self, box: str = "", from_source: bool = False) -> dict[str, str]:
        """What the Vagrantfile reads: the lab, its state, and every path, as the host and
        the VMs see them (the Vagrantfile spells none itself)."""
        return {
            **os.environ,
            **_vagrant_environment(self.paths),
            "VAGRANT_DEFAULT_PROVIDER": self.hypervisor,
            **({"HALAB_BOX": box} if box else {}),
            "HALAB_BUILD_FROM_SOURCE": "1" if from_source else "0",
        }

    def _vagrant(self, **env: str) -> vagrant.Vagrant:
        return _machine({**self.environment(), **env}, self._prefix())

    def _prefix(self) -> list[str]:
        return self.libvirt.prefix if self.hypervisor == "libvirt" else []

    def _driver(self) -> dict[str, str]:
        """What `vagrant up` needs to start a domain: the driver the KVM probe chose."""
        return {"HALAB_LIBVIRT_DRIVER": accelerator.choose().libvirt_driver} if self.hypervisor == "libvirt" else {}

    # --- the contract -------------------------------------------------------------------

    def preflight(self) -> list[Requirement]:
        items = [Requirement("vagrant installed", bool(shutil.which("vagrant")), "install Vagrant (2.3+)")]
        if self.hypervisor == "libvirt":
            plugins = (
                subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True).stdout
                if shutil.which("vagrant")
                else ""
            )
            items.append(
                Requirement(
                    "vagrant-libvirt plugin",
                    "vagrant-libvirt" in plugins
                    or Path("/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json").exists(),
                    "vagrant plugin install vagrant-libvirt (or apt-get install vagrant-libvirt)",
                )
            )
            items.append(
                Requirement(
                    f"libvirt: {self.libvirt.where()}",
                    bool(shutil.which("libvirtd") and shutil.which("virsh")) and (os.geteuid() == 0 or answering()),
                    "apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 dnsmasq-base "
                    "(without a libvirt service, run as root: the lab starts its own)",
                )
            )
            chosen = accelerator.choose()
            items.append(Requirement(f"accelerator {chosen.name} ({chosen.why}); {chosen.cost}", True))
        else:
            items.append(
                Requirement("VirtualBox installed", bool(shutil.which("VBoxManage")), "install VirtualBox 6.1+")
            )
        if shutil.which("vagrant"):
            box, from_source = self.box()
            items.append(
                Requirement(
                    f"box {box}"
                    + (
                        f" ({self.lab.box} absent: compiling at `vagrant up`, slow; "
                        f"`{environment.launcher()} image.build` bakes it)"
                        if from_source
                        else ""
                    ),
                    True,
                )
            )
        return items

    def running(self) -> bool:
        if not self.paths.vagrant.exists():
            return False
        try:
            return all(s.state == "running" for s in self._vagrant().status())
        except subprocess.CalledProcessError:
            return False

    def boot(self) -> None:
        render.write(render.render(self.lab), self.paths.rendered)
        render.place(self.lab, self.paths.imported, self.paths.rendered)
        if self.hypervisor == "libvirt":
            self.libvirt.ensure(self.progress)
        box, from_source = self.box()
        if from_source:
            for name, version in self.lab.versions.model_dump().items():
                sources.fetch(pins.pin(name, version), progress=self.progress)
        driver = self._driver()
        label = (
            f"vagrant up ({self.hypervisor}{', driver ' + driver['HALAB_LIBVIRT_DRIVER'] if driver else ''}, "
            f"box {box}{', compiling from source' if from_source else ''})"
        )
        # What its length depends on: the hypervisor, the box (or a compile) and how many VMs.
        key = f"vagrant up {self.hypervisor} {box}{' compiling' if from_source else ''} {len(self.lab.nodes)} VMs"
        with durations.Stage(key, label, self.progress) as stage:
            try:
                self._vagrant(**self.environment(box, from_source), **driver).up(provider=self.hypervisor)
            except subprocess.CalledProcessError as exc:
                stage.finished("FAILED", ok=False)
                raise ProviderError(f"vagrant up failed ({exc.returncode}); its output is above") from None
            stage.finished("done", ok=True)
        self._write_ssh_config()

    @classmethod
    def teardown(cls, paths: LabPaths) -> None:
        """Destroy every VM of the lab, then what libvirt still holds of it (a crashed `vagrant
        up`, a lost Vagrant state), then the lab's private libvirt and its namespace. Idempotent."""
        libvirt = Libvirt(paths)
        failed = None
        if paths.vagrant.exists() and paths.lab_json.exists():
            try:
                _machine({**os.environ, **_vagrant_environment(paths)}, libvirt.prefix).destroy()
            except subprocess.CalledProcessError as exc:
                failed = exc.returncode
        for lab_network in (paths.network, paths.nat_network):
            libvirt.remove_domains(paths.vm(), lab_network)
        libvirt.stop()
        shutil.rmtree(paths.vagrant, ignore_errors=True)
        if failed is not None and libvirt.leftovers(paths.vm()):
            raise ProviderError(f"vagrant destroy failed ({failed}) and VMs of lab {paths.name!r} remain in libvirt")

    @classmethod
    def footprint(cls, paths: LabPaths) -> str:
        """Its Vagrant state, and the private libvirt in its namespace when it has one."""
        parts = [f"Vagrant machines (state in {paths.vagrant})"] if paths.vagrant.exists() else []
        if Libvirt(paths).private:
            parts.append(f"a private libvirtd in network namespace {paths.libvirt_netns}")
        return ", ".join(parts)

    def alive_nodes(self) -> set[str]:
        return {s.name for s in self._vagrant().status() if s.state == "running"}

    def alive(self, node: str) -> bool:
        """libvirt: the VM's state from virsh (a fault verb asks before acting; `vagrant status`
        takes seconds); VirtualBox: Vagrant's status."""
        if self.hypervisor == "libvirt":
            return self.libvirt.running(self.paths.vm(node))
        return super().alive(node)

    def service_command(self, service: str, verb: str) -> str:
        return f"systemctl {verb} {UNITS[service]}"

    def log_command(self, service: str) -> str:
        """The unit's journal; nginx's errors go to its own file (the journal has only systemd's lines)."""
        return f"cat {NGINX_ERROR_LOG}" if service == "nginx" else f"journalctl -u {UNITS[service]} --no-pager"

    def host_logs(self, node: str) -> list[Path]:
        """QEMU's log of the node's VM (libvirt); VirtualBox keeps none the lab knows of."""
        return [QEMU_LOGS / f"{self.paths.vm(node)}.log"] if self.hypervisor == "libvirt" else []

    def _crash(self, node: str) -> None:
        """A forced power-off: no shutdown, no last VRRP advert. On libvirt that is `virsh
        destroy` (vagrant-libvirt's `halt --force` shuts the guest down cleanly first, which
        is a different fault, and gives up with a traceback after 60 s under TCG)."""
        if self.hypervisor == "libvirt":
            self.libvirt.power_off(self.paths.vm(node))
        else:
            _vagrant_call(f"vagrant halt {node} --force", lambda: self._vagrant().halt(vm_name=node, force=True))

    def _restart(self, node: str) -> None:
        machine = self._vagrant(**self._driver())
        _vagrant_call(f"vagrant up {node}", lambda: machine.up(vm_name=node, no_provision=True))

    def _cut_link(self, node: str) -> None:
        self._set_links(node, "down")

    def _restore_link(self, node: str) -> None:
        self._set_links(node, "up")

    def _set_links(self, node: str, state: str) -> None:
        self.remote.check(node, "; ".join(f"ip link set {nic} {state}" for nic in self.lab_nics(node)))

    def lab_nics(self, node: str) -> list[str]:
        """A node's NICs on the lab's networks, the management NIC (ssh) never among them: as
        on the local lab, a cut link cuts every one (a NAT director's second too)."""
        director = self.lab.nodes[node].role == "director"
        return [LAB_NIC, NAT_NIC] if self.lab.nat is not None and director else [LAB_NIC]

    # --- helpers ------------------------------------------------------------------------

    def _write_ssh_config(self) -> None:
        """vagrant ssh-config for every node, as root (node.sh gives root the VM's key), with
        halab.remote's client options (a ControlMaster per node)."""
        machine = self._vagrant()
        blocks = [ssh_config_as_root(machine.ssh_config(vm_name=name)) for name in self.lab.nodes]
        self.paths.ssh.mkdir(parents=True, exist_ok=True)
        netns = self.libvirt.netns if self._prefix() else None
        self.paths.ssh_config.write_text("\n".join(blocks) + "\nHost *\n" + client_options(self.paths, netns))


def _vagrant_environment(lab: LabPaths) -> dict[str, str]:
    """Every path the Vagrantfile and node.sh need, as variables (host side and VM side), and
    the names the lab's VMs and networks take (paths.py owns them: they carry the checkout id)."""
    return {
        "HALAB_VM_PREFIX": lab.vm(),
        "HALAB_NETWORK": lab.network,
        "HALAB_NAT_NETWORK": lab.nat_network,
        "HALAB_LAB_JSON": str(lab.lab_json),
        "VAGRANT_DOTFILE_PATH": str(lab.vagrant),
        "HALAB_STATE": str(paths.home()),
        "HALAB_GUEST_STATE": paths.GUEST_STATE,
        "HALAB_GUEST_PROJECT": paths.GUEST_PROJECT,
        "HALAB_STATE_EXCLUDES": json.dumps(paths.STATE_SYNC_EXCLUDES),
        "HALAB_PROJECT_EXCLUDES": json.dumps(paths.project_sync_excludes()),
        "HALAB_GUEST_SOURCES": paths.in_guest(paths.sources()),
        "HALAB_GUEST_RENDERED": paths.in_guest(lab.rendered),
        "HALAB_GUEST_MAILDIR": paths.GUEST_MAILDIR,
    }


def _vagrant_call(what: str, call: Callable[[], object]) -> None:
    """A vagrant command a fault verb needs; its failure a ProviderError (its output is above)."""
    try:
        call()
    except subprocess.CalledProcessError as exc:
        raise ProviderError(f"`{what}` failed ({exc.returncode}); its output is above") from None


class _Namespaced(vagrant.Vagrant):
    """python-vagrant running `vagrant` under a prefix (`ip netns exec NS`): vagrant's ssh and
    rsync to the VMs then start inside the lab's namespace, where the VMs' networks are."""

    def __init__(self, prefix: list[str], **options: object) -> None:
        super().__init__(**options)
        self._halab_prefix = prefix

    def _make_vagrant_command(self, args: list[str]) -> list[str]:
        return [*self._halab_prefix, *super()._make_vagrant_command(args)]


def _machine(env: dict[str, str], prefix: list[str] | None = None) -> vagrant.Vagrant:
    return _Namespaced(prefix or [], root=str(paths.ROOT), env=env, quiet_stdout=False, quiet_stderr=False)


def ssh_config_as_root(block: str) -> str:
    """One `vagrant ssh-config` Host block with the user switched to root."""
    lines = [line for line in block.splitlines() if line.strip()]
    return "\n".join("  User root" if line.strip().startswith("User ") else line for line in lines)


def _default_hypervisor() -> str:
    return "virtualbox" if shutil.which("VBoxManage") and not SOCKET.exists() else "libvirt"
