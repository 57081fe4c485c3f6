"""The embedded local provider: every node a user-mode Linux guest, no hypervisor.

Each guest is `linux.uml` booting the host's / read-only over hostfs, with
providers/guest.sh as init; the lab's switch is a bridge in a private network namespace
(providers/netns.py). A guest is several host processes: each is started in its own
session and tagged `umid=halab_<lab>_<node>` on its command line, so teardown finds all
of them from /proc even when the process that started the lab died with kill -9.
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

from halab import build, render, sources
from halab import paths
from halab.paths import LabPaths
from halab.providers import netns, sshaccess
from halab.providers.base import Check, NodeStatus, ProviderError, wait_converged
from halab.sources import Progress
from halab.spec import Lab

GUEST = Path(__file__).with_name("guest.sh")
UML = "linux.uml"
GUEST_MEMORY = "160M"
BOOT_TIMEOUT = 60.0


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


class LocalProvider:
    """up / down / status / ssh_config and the fault verbs for one lab on this host."""

    def __init__(self, lab: Lab, progress: Progress = print) -> None:
        self.lab = lab
        self.paths = LabPaths(lab.name)
        self.progress = progress
        self.nodes = list(lab.nodes)

    # --- preflight ---------------------------------------------------------------

    def preflight(self) -> list[Check]:
        """Everything up() needs from this host, each with the fix when it is missing."""
        tools = {"linux.uml": "user-mode-linux", "bridge": "iproute2", "modprobe": "kmod", "arptables": "arptables",
                 "sshd": "openssh-server", "ssh": "openssh-client", "socat": "socat", "ip": "iproute2",
                 "ipvsadm": "ipvsadm"}
        checks = [Check("running as root", os.geteuid() == 0, "run it as root (sudo)")]
        checks += [Check(f"{tool} installed", bool(shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")),
                         f"apt-get install {package}") for tool, package in tools.items()]
        checks.append(self._uml_modules())
        checks.append(Check("/dev/net/tun (tap devices)", Path("/dev/net/tun").exists(), "modprobe tun"))
        checks.append(self._namespaces())
        checks.append(Check("user nginx exists", _user_exists("nginx"), "useradd --system nginx (./bootstrap does it)"))
        for name, version in self.lab.versions.model_dump().items():
            built = bool(build.find(sources.pin(name, version)))
            checks.append(Check(f"{name} {version} built", built, "invoke build"))
        return checks

    def _uml_modules(self) -> Check:
        result = subprocess.run([UML, "--version"], capture_output=True, text=True, timeout=10) if shutil.which(UML) else None
        version = result.stdout.strip() if result else "?"
        ipvs = Path(f"/usr/lib/uml/modules/{version}/kernel/net/netfilter/ipvs/ip_vs.ko")
        return Check(f"user-mode Linux kernel {version} with IPVS modules", ipvs.exists(),
                     "apt-get install user-mode-linux (its modules include ip_vs)")

    def _namespaces(self) -> Check:
        probe = subprocess.run(["unshare", "-n", "ip", "link", "add", "probe0", "type", "bridge"],
                               capture_output=True, text=True, timeout=10)
        return Check("network namespaces and bridges", probe.returncode == 0,
                     f"a kernel with CONFIG_NET_NS and CONFIG_BRIDGE ({probe.stderr.strip()})")

    # --- lifecycle ---------------------------------------------------------------

    def up(self, keep: bool = False) -> None:
        """Boot the lab; on any failure tear down what was started, unless keep."""
        failed = [c for c in self.preflight() if not c.ok]
        if failed:
            raise ProviderError("preflight failed:\n" + "\n".join(f"  - {c.name}: fix: {c.fix}" for c in failed))
        if self.running():
            self.progress(f"lab {self.lab.name!r} is already up")
            return
        self.down()
        try:
            self._start()
        except BaseException:
            if keep:
                self.progress("--keep: leaving the lab as it is for debugging; `invoke lab.down` removes it")
            else:
                self.down()
            raise

    def _start(self) -> None:
        started = time.monotonic()
        shutil.rmtree(self.paths.rendered, ignore_errors=True)
        render.write(render.render(self.lab), self.paths.rendered)
        sshaccess.prepare(self.lab, self.paths)
        netns.create(self.paths.netns, access_address(self.lab))
        for name in self.nodes:
            self._boot(name)
        self._wait_ready(self.nodes)
        # VRRP's first election: 3 adverts + skew, with room for a slow host.
        wait_converged(self.status, [str(v) for v in self.lab.vips], 3 * self.lab.vrrp.advert_int + 1 + 10,
                       "; see `invoke lab.logs server3`")
        self.progress(f"lab {self.lab.name!r} up: {len(self.nodes)} nodes in {time.monotonic() - started:.1f} s")

    def _boot(self, name: str) -> None:
        """Start one guest; its tap appears in the lab namespace once it boots."""
        node = self.lab.nodes[name]
        directory = self.paths.node(name)
        for marker in ("ready", "linked", "boot.log"):
            (directory / marker).unlink(missing_ok=True)
        directory.mkdir(parents=True, exist_ok=True)
        self.paths.uml.mkdir(parents=True, exist_ok=True)
        (directory / "node.env").write_text(self._node_env(name))
        command = ["ip", "netns", "exec", self.paths.netns, UML, f"mem={GUEST_MEMORY}", "rootfstype=hostfs",
                   "rootflags=/", "ro", f"init={GUEST}", f"vec0:transport=tap,ifname={self._tap(name)}",
                   "con=null", "con0=null,fd:1", f"umid={self._umid(name)}", f"uml_dir={self.paths.uml}",
                   f"HALAB_NODE_DIR={directory}"]
        # setsid -f: the guest gets its own session and is handed to init at once, so init
        # reaps it when it dies, whoever started it (no zombies under a long-lived caller).
        with (directory / "console.log").open("wb") as console:
            subprocess.run(["setsid", "-f", *command], stdin=subprocess.DEVNULL, stdout=console,
                           stderr=subprocess.STDOUT, check=True, timeout=10)
        self.progress(f"  {name}: booting ({node.role}, {node.address})")

    @functools.cached_property
    def _builds(self) -> dict[str, Path]:
        """The staged install trees the guests mount (checked present by the preflight)."""
        return {name: build.find(sources.pin(name, version)).root
                for name, version in self.lab.versions.model_dump().items()}

    def _node_env(self, name: str) -> str:
        node = self.lab.nodes[name]
        values = {
            "NODE": name, "ROLE": node.role, "ADDRESS": str(node.address),
            "PREFIXLEN": str(self.lab.subnet.prefixlen), "MAC": self._mac(name),
            "RENDERED": str(self.paths.node_files(name)), "SSH_DIR": str(self.paths.ssh),
            "KEEPALIVED_BUILD": str(self._builds["keepalived"]),
            "NGINX_BUILD": str(self._builds["nginx"]),
            "HOST_PATHS": f"{paths.ROOT} {paths.home()} {sys.prefix} {sys.base_prefix}",
            "PYTHON": sys.executable, "MAILDIR": paths.GUEST_MAILDIR,
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
                    (self.paths.node(name) / "linked").touch()
                    pending_link.discard(name)
            for name in sorted(pending_ready):
                if (self.paths.node(name) / "ready").exists():
                    pending_ready.discard(name)
                    self.progress(f"  {name}: ready")
                elif not processes(f"umid={self._umid(name)}"):
                    self._fail(name, "its kernel exited during boot")
            time.sleep(0.05)

    def _fail(self, name: str, why: str) -> None:
        tails = []
        for log in ("console.log", "boot.log"):
            path = self.paths.node(name) / log
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-15:]
                tails.append(f"--- {path} (last {len(lines)} lines)\n" + "\n".join(lines))
        raise ProviderError(f"node {name} {why}\n" + "\n".join(tails))

    def running(self) -> bool:
        """True when the namespace exists and every node's guest is alive and was ready."""
        return netns.exists(self.paths.netns) and all(
            processes(f"umid={self._umid(n)}") and (self.paths.node(n) / "ready").exists() for n in self.nodes)

    def down(self) -> None:
        """Remove every guest process, ssh master, namespace and marker of this lab. Idempotent."""
        teardown(self.paths)

    # --- status and access ----------------------------------------------------------

    def ssh_config(self) -> Path:
        return self.paths.ssh_config

    def status(self) -> list[NodeStatus]:
        rows = []
        for name, node in self.lab.nodes.items():
            alive = bool(processes(f"umid={self._umid(name)}"))
            vrrp, held = sshaccess.vrrp_view(self.paths.ssh_config, self.lab, name) if alive else ("-", ())
            rows.append(NodeStatus(name, node.role, str(node.address), alive, vrrp, held))
        return rows

    # --- faults -------------------------------------------------------------------

    def stop_service(self, node: str, service: str) -> None:
        self._guest(node, f"stop {service}")

    def start_service(self, node: str, service: str) -> None:
        self._guest(node, f"start {service}")

    def crash(self, node: str) -> None:
        """Kill the node's kernel outright: no clean shutdown, no last VRRP advert."""
        kill_all(f"umid={self._umid(node)}")
        (self.paths.node(node) / "ready").unlink(missing_ok=True)

    def restart(self, node: str) -> None:
        self.crash(node)
        self._boot(node)
        self._wait_ready([node])

    def cut_link(self, node: str) -> None:
        netns.detach(self.paths.netns, self._tap(node))

    def restore_link(self, node: str) -> None:
        netns.attach(self.paths.netns, self._tap(node), self.lab.multicast)

    def _guest(self, node: str, verb: str) -> None:
        result = sshaccess.run(self.paths.ssh_config, node, f"sh {GUEST} {verb}")
        if result.returncode != 0:
            raise ProviderError(f"{node}: `{verb}` failed: {result.stderr.strip() or result.stdout.strip()}")

    # --- names --------------------------------------------------------------------

    def _tap(self, name: str) -> str:
        return f"tap{self.nodes.index(name)}"

    def _umid(self, name: str) -> str:
        return umid(self.lab.name, name)

    def _mac(self, name: str) -> str:
        """Stable per lab and node, locally administered: 02:<lab hash>:<node index>."""
        digest = hashlib.sha256(self.lab.name.encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in digest[:3]) + f":00:{self.nodes.index(name) + 1:02x}"


def teardown(paths: LabPaths) -> None:
    """Everything a lab of this name left on the host, from its state directory and /proc alone.

    Needs no lab file, so it also cleans up after a crash of the process that started it.
    """
    kill_all(f"umid={umid(paths.name, '')}")
    kill_all(str(paths.ssh) + "/")
    netns.delete(paths.netns)
    shutil.rmtree(paths.uml, ignore_errors=True)
    if paths.nodes.exists():
        for directory in paths.nodes.iterdir():
            for marker in ("ready", "linked"):
                (directory / marker).unlink(missing_ok=True)
    for socket in paths.ssh.glob("cm-*") if paths.ssh.exists() else []:
        socket.unlink(missing_ok=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False

