"""The Vagrant provider: the same lab as five VMs (libvirt or VirtualBox), via python-vagrant.

The Vagrantfile reads the lab.json this provider renders; each lab keeps its own
Vagrant state (VAGRANT_DOTFILE_PATH), so labs of different names live side by side.
What differs from the local lab stays here: the lab NIC is eth1 (both hypervisors add
a management NIC first), services are systemd units, a crash is a forced power-off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import vagrant

from halab import paths, render, sources
from halab.paths import LabPaths
from halab.providers import sshaccess
from halab.providers.base import Check, NodeStatus, ProviderError, wait_converged
from halab.spec import Lab

LAB_NIC = "eth1"
HYPERVISORS = ("libvirt", "virtualbox")
UNITS = {"keepalived": "keepalived", "nginx": "nginx", "smtpd": "halab-smtpd"}
CONVERGE_TIMEOUT = 60.0


class VagrantProvider:
    def __init__(self, lab: Lab, progress: Callable[[str], None] = print, hypervisor: str | None = None) -> None:
        self.lab = lab.model_copy(update={"vrrp": lab.vrrp.model_copy(update={"interface": LAB_NIC})})
        self.paths = LabPaths(lab.name)
        self.progress = progress
        self.hypervisor = hypervisor or os.environ.get("HALAB_VAGRANT_PROVIDER") or _default_hypervisor()

    # --- vagrant itself ---------------------------------------------------------------

    def box(self) -> tuple[str, bool]:
        """(box, compile from source?): the lab's baked box when present, else the public one."""
        present = {(b.name, b.provider) for b in self._vagrant().box_list()}
        if (self.lab.box, self.hypervisor) in present:
            return self.lab.box, False
        return self.lab.box_fallback, True

    def environment(self, box: str = "", from_source: bool = False) -> dict[str, str]:
        return {**os.environ, "HALAB_LAB_JSON": str(self.paths.rendered / "lab.json"),
                "VAGRANT_DOTFILE_PATH": str(self.paths.root / "vagrant"),
                "VAGRANT_DEFAULT_PROVIDER": self.hypervisor,
                **({"HALAB_BOX": box} if box else {}), "HALAB_BUILD_FROM_SOURCE": "1" if from_source else "0"}

    def _vagrant(self, **env: str) -> vagrant.Vagrant:
        return vagrant.Vagrant(root=str(paths.ROOT), env={**self.environment(), **env},
                               quiet_stdout=False, quiet_stderr=False)

    # --- the contract -------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        checks = [Check("vagrant installed", bool(shutil.which("vagrant")), "install Vagrant (2.3+)")]
        if self.hypervisor == "libvirt":
            plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True).stdout \
                if shutil.which("vagrant") else ""
            checks.append(Check("vagrant-libvirt plugin", "vagrant-libvirt" in plugins or
                                Path("/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json").exists(),
                                "vagrant plugin install vagrant-libvirt (or apt-get install vagrant-libvirt)"))
            checks.append(Check("libvirt running", Path("/var/run/libvirt/libvirt-sock").exists(),
                                "install libvirt-daemon-system and add yourself to the libvirt group"))
        else:
            checks.append(Check("VirtualBox installed", bool(shutil.which("VBoxManage")), "install VirtualBox 6.1+"))
        if shutil.which("vagrant"):
            box, from_source = self.box()
            checks.append(Check(f"box {box}" + (f" ({self.lab.box} absent: compiling at `vagrant up`, slow; "
                                                "`invoke image.build` bakes it)" if from_source else ""), True))
        return checks

    def running(self) -> bool:
        if not (self.paths.root / "vagrant").exists():
            return False
        try:
            return all(s.state == "running" for s in self._vagrant().status())
        except subprocess.CalledProcessError:
            return False

    def up(self, keep: bool = False) -> None:
        failed = [c for c in self.preflight() if not c.ok]
        if failed:
            raise ProviderError("preflight failed:\n" + "\n".join(f"  - {c.name}: fix: {c.fix}" for c in failed))
        render.write(render.render(self.lab), self.paths.rendered)
        box, from_source = self.box()
        if from_source:
            for name, version in self.lab.versions.model_dump().items():
                sources.fetch(sources.pin(name, version), progress=self.progress)
        self.progress(f"vagrant up ({self.hypervisor}, box {box}{', compiling from source' if from_source else ''})")
        try:
            self._vagrant(**self.environment(box, from_source)).up(provider=self.hypervisor)
            self._write_ssh_config()
            wait_converged(self.status, [str(v) for v in self.lab.vips], CONVERGE_TIMEOUT)
        except (subprocess.CalledProcessError, ProviderError) as exc:
            if keep:
                self.progress("--keep: leaving the VMs for debugging; `invoke lab.down --provider vagrant` removes them")
            else:
                self.down()
            raise ProviderError(f"vagrant up failed: {exc}") from None

    def down(self) -> None:
        """Destroy every VM of the lab; idempotent (nothing to do when none exist)."""
        if (self.paths.root / "vagrant").exists() and (self.paths.rendered / "lab.json").exists():
            self._vagrant().destroy()
        shutil.rmtree(self.paths.root / "vagrant", ignore_errors=True)

    def ssh_config(self) -> Path:
        return self.paths.ssh_config

    def status(self) -> list[NodeStatus]:
        states = {s.name: s.state for s in self._vagrant().status()}
        rows = []
        for name, node in self.lab.nodes.items():
            alive = states.get(name) == "running"
            vrrp, held = sshaccess.vrrp_view(self.ssh_config(), self.lab, name) if alive else ("-", ())
            rows.append(NodeStatus(name, node.role, str(node.address), alive, vrrp, held))
        return rows

    def stop_service(self, node: str, service: str) -> None:
        self._root(node, f"systemctl stop {UNITS[service]}")

    def start_service(self, node: str, service: str) -> None:
        self._root(node, f"systemctl start {UNITS[service]}")

    def crash(self, node: str) -> None:
        """A forced power-off: no shutdown, no last VRRP advert."""
        self._vagrant().halt(vm_name=node, force=True)

    def restart(self, node: str) -> None:
        self._vagrant().up(vm_name=node, no_provision=True)

    def cut_link(self, node: str) -> None:
        self._root(node, f"ip link set {LAB_NIC} down")

    def restore_link(self, node: str) -> None:
        self._root(node, f"ip link set {LAB_NIC} up")

    # --- helpers ------------------------------------------------------------------------

    def _write_ssh_config(self) -> None:
        """vagrant ssh-config for every node, as root (node.sh gives root the VM's key), with a
        ControlMaster so the acceptance suite's many commands stay fast."""
        machine = self._vagrant()
        blocks = [ssh_config_as_root(machine.ssh_config(vm_name=name)) for name in self.lab.nodes]
        self.paths.ssh.mkdir(parents=True, exist_ok=True)
        options = (f"Host *\n    ControlMaster auto\n    ControlPath {self.paths.ssh}/cm-%C\n"
                   "    ControlPersist 120\n    BatchMode yes\n")
        self.paths.ssh_config.write_text("\n".join(blocks) + "\n" + options)

    def _root(self, node: str, command: str) -> None:
        result = sshaccess.run(self.ssh_config(), node, command)
        if result.returncode != 0:
            raise ProviderError(f"{node}: `{command}` failed: {result.stderr.strip() or result.stdout.strip()}")


def ssh_config_as_root(block: str) -> str:
    """One `vagrant ssh-config` Host block with the user switched to root."""
    lines = [line for line in block.splitlines() if line.strip()]
    return "\n".join("  User root" if line.strip().startswith("User ") else line for line in lines)


def _default_hypervisor() -> str:
    return "virtualbox" if shutil.which("VBoxManage") and not Path("/var/run/libvirt/libvirt-sock").exists() else "libvirt"
