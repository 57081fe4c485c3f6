"""Where libvirt lives for a Vagrant lab: the host's own service, or a private one.

A host with a libvirt service (a workstation) keeps it: the lab's VMs and networks
live there and vagrant runs as usual. A host without one (a CI machine, a container:
no systemd) gets a private libvirtd and virtlogd started inside a network namespace
made for the lab. Every bridge, dnsmasq and VM libvirt then makes lives in that
namespace, so the lab's subnet and Vagrant's management network never reach the host's
own; every vagrant and ssh call runs there too (`prefix`). `stop` removes all of it
from the lab's state alone, also after a crash. The code path is the same either way;
only the prefix differs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

from halab import accelerator
from halab.errors import ProviderError
from halab.paths import VMS_NAMESPACE, LabPaths, checkout_id, parse_host_name
from halab.providers.base import Progress

SOCKET = Path("/var/run/libvirt/libvirt-sock")
HIDE_KVM = Path(__file__).with_name("hide-kvm.sh")  # runs libvirtd with a /dev that has no kvm
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
STARTUP_TIMEOUT = 30.0  # seconds for libvirtd's socket to answer
STOP_TIMEOUT = 15.0  # seconds for the namespace's processes to exit after SIGTERM


def answering(path: Path = SOCKET) -> bool:
    """A libvirtd accepts connections on its system socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _netns_names() -> list[str]:
    """The host's named network namespaces (`ip netns list` prints `name (id: N)`)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


class Libvirt:
    """The libvirt one lab's VMs use, and how to reach them (the command prefix)."""

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        self.netns = paths.libvirt_netns
        self.marker = paths.libvirt / "netns"  # written once the private libvirt started
        self.pid_files = {"virtlogd": paths.libvirt / "virtlogd.pid", "libvirtd": paths.libvirt / "libvirtd.pid"}
        # What hide-kvm.sh mounts: a whiteout layer hiding /dev/kvm, and qemu.conf for this libvirtd.
        self.layer, self.qemu_conf = paths.libvirt / "dev-without-kvm", paths.libvirt / "qemu.conf"

    @property
    def private(self) -> bool:
        """This lab runs its own libvirt (in its namespace)."""
        return self.marker.exists() and self.netns in _netns_names()

    @property
    def prefix(self) -> list[str]:
        """What every vagrant, virsh and ssh call of the lab runs under: the namespace, if private."""
        return ["ip", "netns", "exec", self.netns] if self.private else []

    def where(self) -> str:
        """One line for people: which libvirt the lab uses."""
        if self.private:
            return f"a private libvirtd in network namespace {self.netns} (the host runs no libvirt service)"
        if answering():
            return "the host's libvirt service"
        return f"none yet: `lab.up` starts a private libvirtd in network namespace {self.netns}"

    def ensure(self, progress: Progress = print) -> None:
        """Use the host's libvirt when it runs one; start the lab's private one otherwise."""
        if self.private and answering():
            return
        if answering():
            owner = _private_owner()
            if owner is None:
                return  # the host's own service
            raise ProviderError(
                f"libvirt's socket is served by a private libvirtd in network namespace {owner} (another "
                f"halab lab): one Vagrant lab at a time on a host without a libvirt service; {_down_hint(owner)}"
            )
        progress(f"no libvirt service on this host: starting a private libvirtd in network namespace {self.netns}")
        self.paths.libvirt.mkdir(parents=True, exist_ok=True)
        if self.netns not in _netns_names():
            _check(["ip", "netns", "add", self.netns])
        _check(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        env = {**os.environ, "LIBVIRT_LOG_OUTPUTS": f"3:file:{self.paths.libvirt / 'libvirtd.log'}"}
        hidden = self._kvm_hidden(progress)
        for daemon, pid_file in self.pid_files.items():
            wrapper = hidden if daemon == "libvirtd" else []
            _check(["ip", "netns", "exec", self.netns, *wrapper, daemon, "--daemon", f"--pid-file={pid_file}"], env=env)
        self.marker.write_text(self.netns + "\n")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not answering():
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"the private libvirtd did not answer within {STARTUP_TIMEOUT:g} s; "
                    f"see {self.paths.libvirt / 'libvirtd.log'}"
                )
            time.sleep(0.5)

    def _kvm_hidden(self, progress: Progress) -> list[str]:
        """What the private libvirtd runs under so that it never sees a /dev/kvm QEMU cannot use:
        nothing when KVM works or there is no /dev/kvm; else hide-kvm.sh in a mount namespace,
        with its whiteout layer and qemu.conf under the lab's state (why: see hide-kvm.sh)."""
        chosen = accelerator.choose()
        if chosen.name == "kvm" or not accelerator.DEVICE.exists():
            return []
        self.layer.mkdir(exist_ok=True)
        if not (self.layer / "kvm").exists():
            os.mknod(self.layer / "kvm", 0o600 | stat.S_IFCHR, os.makedev(0, 0))  # an overlay whiteout
        host_conf = QEMU_CONF.read_text() if QEMU_CONF.exists() else ""
        own = "\n# halab: QEMU runs in libvirtd's own mount namespace (hide-kvm.sh)\nnamespaces = []\n"
        self.qemu_conf.write_text(host_conf + own)
        progress(f"{accelerator.DEVICE} is hidden from the private libvirtd ({chosen.why})")
        mount_namespace = ["unshare", "--mount", "--propagation", "private"]
        return [*mount_namespace, "sh", str(HIDE_KVM), str(self.layer), str(self.qemu_conf)]

    def remove_domains(self, prefix: str, network: str) -> None:
        """Destroy and undefine every VM whose name starts with prefix, and the lab's network:
        what a crashed `vagrant up` or a lost Vagrant state leaves in libvirt."""
        for name in self.leftovers(prefix):
            self._virsh("destroy", name)
            self._virsh("undefine", name, "--remove-all-storage")
        if network in self._virsh("net-list", "--all", "--name").split():
            self._virsh("net-destroy", network)
            self._virsh("net-undefine", network)

    def power_off(self, domain: str) -> None:
        """Pull the plug on a VM (`virsh destroy`): no shutdown, its kernel simply stops."""
        result = subprocess.run(
            [*self.prefix, "virsh", "-q", "-c", "qemu:///system", "destroy", domain],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise ProviderError(f"virsh destroy {domain} failed: {result.stderr.strip() or result.returncode}")

    def running(self, domain: str) -> bool:
        """The VM runs (virsh domstate says so)."""
        return self._virsh("domstate", domain).strip() == "running"

    def leftovers(self, prefix: str) -> list[str]:
        """The VMs libvirt still has whose names start with prefix."""
        return [name for name in self._virsh("list", "--all", "--name").split() if name.startswith(prefix)]

    def _virsh(self, *args: str) -> str:
        """virsh on the system libvirt (when one answers); its output, failures ignored."""
        if not answering():
            return ""
        argv = [*self.prefix, "virsh", "-q", "-c", "qemu:///system", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout

    def stop(self) -> None:
        """Stop the private libvirt and everything in its namespace (qemu, dnsmasq), then delete
        the namespace. Idempotent; nothing to do when the lab used the host's libvirt."""
        if self.netns in _netns_names():
            pids = _netns_pids(self.netns)
            for pid in pids:
                _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while (pids := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            _check(["ip", "netns", "del", self.netns])
        for path in [self.marker, self.qemu_conf, *self.pid_files.values()]:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.layer, ignore_errors=True)


def _private_owner() -> str | None:
    """The namespace of the libvirtd serving the system socket, when it is a Vagrant lab's."""
    for name in _netns_names():
        named = parse_host_name(name)
        if (
            named is not None
            and named.kind == VMS_NAMESPACE
            and any(_command(pid) == "libvirtd" for pid in _netns_pids(name))
        ):
            return name
    return None


def _down_hint(namespace: str) -> str:
    """How to stop the lab whose private libvirt that namespace holds: by its name, from its checkout."""
    owner = parse_host_name(namespace)
    assert owner is not None  # _private_owner found it by parsing
    command = f"`invoke lab.down --provider vagrant --name {owner.lab}`"
    if owner.checkout == checkout_id():
        return command
    return f"{command} in the checkout that started it (checkout id {owner.checkout}, not this one)"


def _netns_pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _check(argv: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise ProviderError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.returncode}")
