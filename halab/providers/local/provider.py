"""The embedded local provider: every node a user-mode Linux guest, no hypervisor.

Each guest is `linux.uml` booting the host's / read-only over hostfs, with guest.sh as
init; the lab's switch is a bridge in a private network namespace (netns.py). A guest
is several host processes: each is started in its own session and tagged
`umid=halab_<lab>_<node>` on its command line, so teardown finds all of them from /proc
even when the process that started the lab died with kill -9.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from halab import build, paths, pins, render
from halab.errors import ProviderError
from halab.paths import LabPaths, NodeFiles
from halab.providers.base import Progress, Provider, Requirement
from halab.providers.local import netns, sshd
from halab.spec import Lab

UML = "linux.uml"
GUEST_MEMORY = "160M"
BOOT_TIMEOUT = 60.0
# Tools the guests run from the host's filesystem, and the Debian package of each.
TOOLS = {
    "linux.uml": "user-mode-linux",
    "bridge": "iproute2",
    "modprobe": "kmod",
    "arptables": "arptables",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "socat": "socat",
    "ip": "iproute2",
    "ipvsadm": "ipvsadm",
}


def umid(lab: str, node: str) -> str:
    """A guest's tag on its command line; `_` cannot occur in names, so labs never match each other."""
    return f"halab_{lab}_{node}"


def access_address(lab: Lab) -> str:
    """The bridge's address in the lab namespace: the subnet's last usable one, with prefix."""
    return f"{lab.subnet[-2]}/{lab.subnet.prefixlen}"


def processes(marker: str) -> list[int]:
    """PIDs of host processes whose command line contains marker (guests, ssh masters)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_all(marker: str, timeout: float = 5.0) -> None:
    """SIGKILL every process carrying marker, and wait until they have left /proc (bounded)."""
    deadline = time.monotonic() + timeout
    killed: set[int] = set()
    while (pids := processes(marker)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    while any(_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = processes(marker) + [pid for pid in killed if _alive(pid)]
    if left:
        raise ProviderError(f"processes matching {marker!r} survived SIGKILL: {sorted(set(left))}")


def _alive(pid: int) -> bool:
    """Still running: present in /proc and not a zombie (init reaps those; they hold nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class LocalProvider(Provider):
    """Five user-mode Linux guests on this host, on a switch in a private namespace."""

    name = "local"
    # VRRP's first election: 3 adverts + skew, with room for a slow host (set per lab below).
    converge_timeout = 0.0

    def __init__(self, lab: Lab, progress: Progress = print) -> None:
        super().__init__(lab, progress)
        self.converge_timeout = 3 * self.lab.vrrp.advert_int + 1 + 10
        self.nodes = list(self.lab.nodes)

    # --- preflight ---------------------------------------------------------------

    def preflight(self) -> list[Requirement]:
        items = [Requirement("running as root", os.geteuid() == 0, "run it as root (sudo)")]
        items += [
            Requirement(
                f"{tool} installed",
                bool(shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")),
                f"apt-get install {package}",
            )
            for tool, package in TOOLS.items()
        ]
        items.append(self._uml_modules())
        items.append(Requirement("/dev/net/tun (tap devices)", Path("/dev/net/tun").exists(), "modprobe tun"))
        items.append(self._namespaces())
        items.append(
            Requirement("user nginx exists", _user_exists("nginx"), "useradd --system nginx (./bootstrap does it)")
        )
        for name, version in self.lab.versions.model_dump().items():
            built = bool(build.find(pins.pin(name, version)))
            items.append(Requirement(f"{name} {version} built", built, "invoke build"))
        return items

    def _uml_modules(self) -> Requirement:
        result = (
            subprocess.run([UML, "--version"], capture_output=True, text=True, timeout=10)
            if shutil.which(UML)
            else None
        )
        version = result.stdout.strip() if result else "?"
        ipvs = Path(f"/usr/lib/uml/modules/{version}/kernel/net/netfilter/ipvs/ip_vs.ko")
        return Requirement(
            f"user-mode Linux kernel {version} with IPVS modules",
            ipvs.exists(),
            "apt-get install user-mode-linux (its modules include ip_vs)",
        )

    def _namespaces(self) -> Requirement:
        probe = subprocess.run(
            ["unshare", "-n", "ip", "link", "add", "probe0", "type", "bridge"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return Requirement(
            "network namespaces and bridges",
            probe.returncode == 0,
            f"a kernel with CONFIG_NET_NS and CONFIG_BRIDGE ({probe.stderr.strip()})",
        )

    # --- lifecycle ---------------------------------------------------------------

    def boot(self) -> None:
        self.down()
        shutil.rmtree(self.paths.rendered, ignore_errors=True)
        render.write(render.render(self.lab), self.paths.rendered)
        sshd.prepare(self.lab, self.paths)
        netns.create(self.paths.netns, access_address(self.lab))
        for name in self.nodes:
            self._boot(name)
        self._wait_ready(self.nodes)

    def _boot(self, name: str) -> None:
        """Start one guest; its tap appears in the lab namespace once it boots."""
        node = self.lab.nodes[name]
        files = self.paths.node(name)
        for stale in (*files.markers, files.boot_log):
            stale.unlink(missing_ok=True)
        files.directory.mkdir(parents=True, exist_ok=True)
        self.paths.uml.mkdir(parents=True, exist_ok=True)
        files.env.write_text(self._node_env(name, files))
        command = [
            "ip",
            "netns",
            "exec",
            self.paths.netns,
            UML,
            f"mem={GUEST_MEMORY}",
            "rootfstype=hostfs",
            "rootflags=/",
            "ro",
            f"init={paths.GUEST_INIT}",
            f"vec0:transport=tap,ifname={self._tap(name)}",
            "con=null",
            "con0=null,fd:1",
            f"umid={self._umid(name)}",
            f"uml_dir={self.paths.uml}",
            f"HALAB_NODE_DIR={files.directory}",
            f"HALAB_NODE_ENV={files.env.name}",
        ]
        # setsid -f: the guest gets its own session and is handed to init at once, so init
        # reaps it when it dies, whoever started it (no zombies under a long-lived caller).
        with files.console.open("wb") as console:
            subprocess.run(
                ["setsid", "-f", *command],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=10,
            )
        self.progress(f"  {name}: booting ({node.role}, {node.address})")

    @functools.cached_property
    def _builds(self) -> dict[str, Path]:
        """The staged install trees the guests mount (checked present by the preflight)."""
        found = {name: build.find(pins.pin(name, version)) for name, version in self.lab.versions.model_dump().items()}
        missing = [name for name, tree in found.items() if tree is None]
        if missing:
            raise ProviderError(f"{', '.join(missing)} not built on this host: run `invoke build`")
        return {name: tree.root for name, tree in found.items() if tree is not None}

    def _node_env(self, name: str, files: NodeFiles) -> str:
        """The guest init's settings; file names are relative to the node directory it mounts."""
        node = self.lab.nodes[name]
        values = {
            "NODE": name,
            "ROLE": node.role,
            "ADDRESS": str(node.address),
            "PREFIXLEN": str(self.lab.subnet.prefixlen),
            "MAC": self._mac(name),
            "RENDERED": str(self.paths.node_files(name)),
            "SSH_DIR": str(self.paths.ssh),
            "KEEPALIVED_BUILD": str(self._builds["keepalived"]),
            "NGINX_BUILD": str(self._builds["nginx"]),
            "HOST_PATHS": f"{paths.ROOT} {paths.home()} {sys.prefix} {sys.base_prefix}",
            "PYTHON": sys.executable,
            "MAILDIR": paths.GUEST_MAILDIR,
            "GUEST_INIT": str(paths.GUEST_INIT),
            "BOOT_LOG": files.boot_log.name,
            "LOG_DIR": files.logs.name,
            "LINKED": files.linked.name,
            "READY": files.ready.name,
        }
        return "".join(f"{key}='{value}'\n" for key, value in values.items())

    def _wait_ready(self, names: list[str]) -> None:
        """Attach each guest's tap to the switch as it appears, then wait for its sshd."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        pending_link, pending_ready = set(names), set(names)
        while pending_ready:
            if time.monotonic() > deadline:
                self._fail(sorted(pending_ready)[0], f"did not become ready within {BOOT_TIMEOUT:.0f} s")
            present = netns.links(self.paths.netns) if pending_link else set()
            for name in sorted(pending_link):
                if self._tap(name) in present:
                    netns.attach(self.paths.netns, self._tap(name), self.lab.multicast)
                    self.paths.node(name).linked.touch()
                    pending_link.discard(name)
            for name in sorted(pending_ready):
                if self.paths.node(name).ready.exists():
                    pending_ready.discard(name)
                    self.progress(f"  {name}: ready")
                elif not self.alive(name):
                    self._fail(name, "its kernel exited during boot")
            time.sleep(0.05)

    def _fail(self, name: str, why: str) -> None:
        files = self.paths.node(name)
        tails = []
        for log in (files.console, files.boot_log):
            if log.exists():
                lines = log.read_text(errors="replace").splitlines()[-15:]
                tails.append(f"--- {log} (last {len(lines)} lines)\n" + "\n".join(lines))
        raise ProviderError(f"node {name} {why}\n" + "\n".join(tails))

    def running(self) -> bool:
        """True when the namespace exists and every node's guest is alive and was ready."""
        return netns.exists(self.paths.netns) and all(
            self.alive(n) and self.paths.node(n).ready.exists() for n in self.nodes
        )

    def alive_nodes(self) -> set[str]:
        return {name for name in self.nodes if self.alive(name)}

    def alive(self, node: str) -> bool:
        return bool(processes(f"umid={self._umid(node)}"))

    @classmethod
    def teardown(cls, paths: LabPaths) -> None:
        """Every guest process, ssh master, the namespace (and with it every tap) and the
        markers of a lab of this name, found from its state directory and /proc alone."""
        kill_all(f"umid={umid(paths.name, '')}")
        kill_all(str(paths.ssh) + "/")
        netns.delete(paths.netns)
        shutil.rmtree(paths.uml, ignore_errors=True)
        for directory in paths.nodes.iterdir() if paths.nodes.exists() else []:
            for marker in NodeFiles(directory).markers:
                marker.unlink(missing_ok=True)
        for socket in paths.ssh.glob("cm-*") if paths.ssh.exists() else []:
            socket.unlink(missing_ok=True)

    # --- faults -------------------------------------------------------------------

    def service_command(self, service: str, verb: str) -> str:
        return f"sh {paths.GUEST_INIT} {verb} {service}"

    def _crash(self, node: str) -> None:
        kill_all(f"umid={self._umid(node)}")
        self.paths.node(node).ready.unlink(missing_ok=True)

    def _restart(self, node: str) -> None:
        self._crash(node)
        self._boot(node)
        self._wait_ready([node])

    def _cut_link(self, node: str) -> None:
        netns.detach(self.paths.netns, self._tap(node))

    def _restore_link(self, node: str) -> None:
        netns.attach(self.paths.netns, self._tap(node), self.lab.multicast)

    # --- names --------------------------------------------------------------------

    def _tap(self, name: str) -> str:
        return f"tap{self.nodes.index(name)}"

    def _umid(self, name: str) -> str:
        return umid(self.lab.name, name)

    def _mac(self, name: str) -> str:
        """Stable per lab and node, locally administered: 02:<lab hash>:<node index>."""
        digest = hashlib.sha256(self.lab.name.encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in digest[:3]) + f":00:{self.nodes.index(name) + 1:02x}"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
