"""The embedded local provider: every node a user-mode Linux guest, no hypervisor.

Each guest is `linux.uml` booting the host's / read-only over hostfs, with guest.sh as
init and xstate.c preloaded (its FPU state must fit the host CPU's); the lab's switch is
a bridge in a private network namespace (netns.py). A guest
is several host processes: each is started in its own session and tagged
`umid=halab_<checkout>_<lab>_<node>` on its command line (paths.guest_tag), so
teardown finds all of them from /proc even when the process that started the lab died
with kill -9.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

from halab import build, paths, render, versions
from halab.errors import ProviderError
from halab.paths import LabPaths, NodeFiles
from halab.providers.base import NGINX_ERROR_LOG, Progress, Provider, Requirement
from halab.providers.local import netns, orphans, sshd, xstate
from halab.providers.local.processes import arguments, checked, kill_all, processes
from halab.spec import Lab

UML = "linux.uml"
GUEST_MEMORY = "160M"
BOOT_TIMEOUT = 60.0
CONVERGE_ROOM = 30.0
DEATH_GRACE = 1.0
# What the guests' roles load (guest.sh): IPVS and its schedulers on directors, legacy
# arptables on real servers, and ipip on LVS-TUN real servers.
GUEST_MODULES = (
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sh",
    "ip_vs_dh",
    "ip_vs_sed",
    "ip_vs_nq",
    "arp_tables",
    "arptable_filter",
    "arpt_mangle",
    "ipip",
)
# Where guest.sh has each service log (the guest's /var/log, on the host in the node's directory).
LOGS = {"keepalived": "/var/log/keepalived.log", "nginx": NGINX_ERROR_LOG, "smtpd": "/var/log/smtpd.log"}
# Tools the guests run from the host's filesystem, and the Debian package of each.
HOST_TOOLS = Path(__file__).with_name("host-tools")


def host_tools() -> dict[str, str]:
    """binary -> Debian package: what the guests run from the host (one list, shared with
    ./bootstrap and guest.sh)."""
    rows = [line.split() for line in HOST_TOOLS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {binary: package for binary, package in rows}


def access_address(lab: Lab) -> str:
    """The bridge's address in the lab namespace: the subnet's last usable one, with prefix."""
    return f"{lab.access_address}/{lab.subnet.prefixlen}"


def nat_access_address(lab: Lab) -> str | None:
    """The NAT network's bridge address (its last usable one), or None: a lab without NAT has one switch."""
    return f"{lab.nat.access_address}/{lab.nat.subnet.prefixlen}" if lab.nat else None


class LocalProvider(Provider):
    """Five user-mode Linux guests on this host, on a switch in a private namespace."""

    name = "local"
    converge_timeout = 0.0  # set per lab below

    def __init__(self, lab: Lab, progress: Progress = print) -> None:
        super().__init__(lab, progress)
        # VRRP's first election takes 3 adverts + skew; a wait, not a measurement, so with
        # ample room for a loaded host (ten guests on two busy cores have taken over 14 s).
        self.converge_timeout = 3 * self.lab.vrrp.advert_int + 1 + CONVERGE_ROOM
        self.nodes = list(self.lab.nodes)

    # --- preflight ---------------------------------------------------------------

    def prepare(self, lab_given: bool) -> None:
        """The guests run the host's keepalived and nginx builds: compile the missing ones now
        (cached), after refusing versions the fetch chain cannot get here."""
        versions.strict(self.lab, lab_given)
        build.ensure_all(self.lab.versions.model_dump(), self.progress)

    def preflight(self) -> list[Requirement]:
        items = [Requirement("running as root", os.geteuid() == 0, "run it as root (sudo)")]
        items += [
            Requirement(
                f"{tool} installed",
                bool(shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")),
                f"apt-get install {package}",
            )
            for tool, package in host_tools().items()
        ]
        items.append(self._uml_modules())
        items.append(self._arptables_variant())
        items.append(self._memory())
        items.append(self._not_stale())
        items.append(
            Requirement(
                f"a C compiler ({xstate.COMPILER}) for linux.uml's FPU-state preload",
                bool(shutil.which(xstate.COMPILER)),
                xstate.INSTALL,
            )
        )
        items.append(Requirement("/dev/net/tun (tap devices)", Path("/dev/net/tun").exists(), "modprobe tun"))
        items.append(self._namespaces())
        items.append(
            Requirement("user nginx exists", _user_exists("nginx"), "useradd --system nginx (./bootstrap does it)")
        )
        for name, version in self.lab.versions.model_dump().items():
            missing = build.how_to_build(name, version)
            items.append(Requirement(f"{name} {version} built", not missing, missing))
        return items

    def _uml_modules(self) -> Requirement:
        """The guest kernel's modules the roles load: IPVS and its schedulers, legacy arptables."""
        version = _uml_version()
        root = Path(f"/usr/lib/uml/modules/{version}/kernel/net")
        missing = [module for module in GUEST_MODULES if not any(root.rglob(f"{module}.ko"))]
        return Requirement(
            f"user-mode Linux kernel {version} with IPVS and arptables modules",
            not missing,
            f"apt-get install user-mode-linux (missing: {', '.join(missing)})",
        )

    @staticmethod
    def _arptables_variant() -> Requirement:
        """Guests run arptables-legacy explicitly: their kernel has no nf_tables ARP family, so
        the nft variant (Debian's alternative once iptables is installed) cannot work there."""
        alternative = Path("/etc/alternatives/arptables")
        chosen = alternative.readlink().name if alternative.is_symlink() else "arptables"
        return Requirement(
            f"arptables-legacy for the guests (the host's arptables is {chosen}; guests use the legacy one)",
            bool(shutil.which("arptables-legacy", path="/usr/sbin:/sbin")),
            "apt-get install arptables",
        )

    def _memory(self) -> Requirement:
        """Each guest takes up to GUEST_MEMORY; the host needs that for every node, and some room."""
        available = _meminfo("MemAvailable") // 1024
        needed = len(self.lab.nodes) * int(GUEST_MEMORY.rstrip("M")) + 512
        return Requirement(
            f"free memory: {available} MiB available, the lab needs about {needed} MiB",
            available >= needed,
            "stop other labs (`invoke lab.status --all`, `invoke lab.down --all`) or other work",
        )

    def _not_stale(self) -> Requirement:
        """A half-dead lab of the same name (guests or a namespace without a running lab)."""
        left = self.footprint(self.paths)
        stale = bool(left) and not self.running()
        return Requirement(
            f"no stale lab {self.lab.name!r} on this host" + (f" ({left})" if stale else ""),
            not stale,
            f"invoke lab.down --name {self.lab.name}",
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
        render.place(self.lab, self.paths.imported, self.paths.rendered)
        sshd.prepare(self.lab, self.paths)
        orphans.register()
        netns.create(self.paths.netns, access_address(self.lab))
        nat_access = nat_access_address(self.lab)
        if nat_access:
            netns.add_bridge(self.paths.netns, netns.NAT_BRIDGE, nat_access)
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
            "env",
            f"LD_PRELOAD={xstate.preload()}",
            UML,
            f"mem={GUEST_MEMORY}",
            "rootfstype=hostfs",
            "rootflags=/",
            "ro",
            f"init={paths.GUEST_INIT}",
            *(f"vec{i}:transport=tap,ifname={tap}" for i, tap in enumerate(self._links(name))),
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
            checked(
                ["setsid", "-f", *command],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                timeout=10,
            )
        self.progress(f"  {name}: booting ({node.role}, {node.address})")

    @functools.cached_property
    def _builds(self) -> dict[str, Path]:
        """The staged install trees the guests mount (checked present by the preflight)."""
        return {name: found.root for name, found in build.built(self.lab.versions.model_dump()).items()}

    def _node_env(self, name: str, files: NodeFiles) -> str:
        """The guest init's settings; file names are relative to the node directory it mounts."""
        node = self.lab.nodes[name]
        values = {
            "NODE": name,
            "ROLE": node.role,
            "ADDRESS": str(node.address),
            "PREFIXLEN": str(self._subnet_of(name).prefixlen),
            "METHOD": self.lab.method,
            "MAC": self._mac(name),
            # Every node's lab NIC carries the name the lab file gives it (vrrp.interface: a
            # production `ens33` works as is), as keepalived.conf and the probe name it.
            "LAB_INTERFACE": self.lab.vrrp.interface,
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
            "FAILED": files.failed.name,
            "HOST_TOOLS": str(HOST_TOOLS),
            "VIPS": " ".join(str(vip) for vip in self.lab.vips),
            "ARP_SUPPRESSION": self.lab.arp_suppression,
            **self._nat_env(name),
        }
        return "".join(f"{key}='{value}'\n" for key, value in values.items())

    def _nat_env(self, name: str) -> dict[str, str]:
        """NAT: the gateway for real servers; a director's second NIC on the real servers' network."""
        nat = self.lab.nat
        if nat is None:
            return {}
        values = {"NAT_GATEWAY": str(nat.gateway)}
        if name in nat.directors:
            values |= {
                "NAT_ADDRESS": str(nat.directors[name]),
                "NAT_PREFIXLEN": str(nat.subnet.prefixlen),
                "NAT_INTERFACE": nat.interface,
                "NAT_MAC": self._mac(name, network=1),
            }
        return values

    def _wait_ready(self, names: list[str]) -> None:
        """Attach each guest's tap to the switch as it appears, then wait until its init says
        every step of its role passed (or which one failed)."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        pending_link, pending_ready = set(names), set(names)
        gone_since: dict[str, float] = {}
        while pending_ready:
            if time.monotonic() > deadline:
                self._fail(sorted(pending_ready)[0], f"did not become ready within {BOOT_TIMEOUT:.0f} s")
            present = netns.links(self.paths.netns) if pending_link else set()
            for name in sorted(pending_link):
                if set(self._links(name)) <= present:
                    self._restore_link(name)
                    self.paths.node(name).linked.touch()
                    pending_link.discard(name)
            for name in sorted(pending_ready):
                files = self.paths.node(name)
                if files.ready.exists():
                    pending_ready.discard(name)
                    self.progress(f"  {name}: ready ({self.lab.nodes[name].role} role verified)")
                elif files.failed.exists():
                    self._fail(name, f"failed at step '{files.failed.read_text().strip()}' of its role")
                elif self._gone(name, gone_since):
                    self._fail(name, "its kernel exited during boot")
            time.sleep(0.05)

    def _gone(self, name: str, gone_since: dict[str, float]) -> bool:
        """The guest has had no process for DEATH_GRACE seconds. One look is not enough: early
        in its boot a user-mode Linux kernel re-executes itself (to turn address-space
        randomisation off), and a look at /proc during that exec sees no command line."""
        if self.alive(name):
            gone_since.pop(name, None)
            return False
        return time.monotonic() - gone_since.setdefault(name, time.monotonic()) > DEATH_GRACE

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

    @classmethod
    def footprint(cls, paths: LabPaths) -> str:
        guests = len(arguments(f"umid={paths.guest_tag()}"))
        parts = [f"{guests} guest(s)"] if guests else []
        return ", ".join(parts + ([f"namespace {paths.netns}"] if netns.exists(paths.netns) else []))

    def alive(self, node: str) -> bool:
        return bool(processes(f"umid={self._umid(node)}"))

    @classmethod
    def teardown(cls, paths: LabPaths) -> None:
        """Every guest process, ssh master, the namespace (and with it every tap) and the
        markers of a lab of this name, found from its state directory and /proc alone."""
        kill_all(f"umid={paths.guest_tag()}")
        kill_all(str(paths.ssh) + "/")
        kill_all(str(paths.control_dir) + "/")
        netns.delete(paths.netns)
        shutil.rmtree(paths.uml, ignore_errors=True)
        for directory in paths.nodes.iterdir() if paths.nodes.exists() else []:
            for marker in NodeFiles(directory).markers:
                marker.unlink(missing_ok=True)
        shutil.rmtree(paths.control_dir, ignore_errors=True)

    # --- faults -------------------------------------------------------------------

    def service_command(self, service: str, verb: str) -> str:
        return f"sh {paths.GUEST_INIT} {verb} {service}"

    def log_command(self, service: str) -> str:
        return f"cat {LOGS[service]}"

    def host_logs(self, node: str) -> list[Path]:
        """The guest's console and its init's output, then its /var/log (kept in the node's directory)."""
        files = self.paths.node(node)
        return [files.console, files.boot_log, *sorted(files.logs.rglob("*.log"))]

    def _crash(self, node: str) -> None:
        kill_all(f"umid={self._umid(node)}")
        self.paths.node(node).ready.unlink(missing_ok=True)

    def _restart(self, node: str) -> None:
        self._crash(node)
        self._boot(node)
        self._wait_ready([node])

    def _cut_link(self, node: str) -> None:
        for tap in self._links(node):
            netns.detach(self.paths.netns, tap)

    def _restore_link(self, node: str) -> None:
        for tap, bridge in self._links(node).items():
            netns.attach(self.paths.netns, tap, self.lab.multicast, bridge)

    # --- the lab switch -------------------------------------------------------------

    def filter_switch(self, rule: list[str], add: bool = True, missing_ok: bool = False) -> None:
        self.node(self.lab.client)  # the lab is up on this host
        netns.filter_frames(self.paths.netns, rule, add, check=not missing_ok)

    def switch_filters(self) -> list[str]:
        return netns.frame_filters(self.paths.netns) if netns.exists(self.paths.netns) else []

    def switch_port(self, node: str) -> str:
        return self._tap(self.lab.known(node))

    def switch_mac(self, node: str) -> str:
        return self._mac(self.lab.known(node))

    # --- names --------------------------------------------------------------------

    def _tap(self, name: str) -> str:
        return f"tap{self.nodes.index(name)}"

    def _links(self, name: str) -> dict[str, str]:
        """A guest's taps in NIC order (vec0, vec1) -> the bridge each plugs into. With NAT the
        real servers sit on the NAT network alone and each director has a NIC on both."""
        nat = self.lab.nat
        if nat is None:
            return {self._tap(name): netns.BRIDGE}
        if self.lab.nodes[name].role == "realserver":
            return {self._tap(name): netns.NAT_BRIDGE}
        if name in nat.directors:
            return {self._tap(name): netns.BRIDGE, f"{self._tap(name)}n": netns.NAT_BRIDGE}
        return {self._tap(name): netns.BRIDGE}

    def _subnet_of(self, name: str) -> IPv4Network:
        """The subnet of a node's first NIC: a NAT lab's real servers are on the NAT network."""
        if self.lab.nat and self.lab.nodes[name].role == "realserver":
            return self.lab.nat.subnet
        return self.lab.subnet

    def _umid(self, name: str) -> str:
        return self.paths.guest_tag(name)

    def _mac(self, name: str, network: int = 0) -> str:
        """Stable per lab, node and NIC, locally administered: 02:<lab hash>:<NIC>:<node index>."""
        digest = hashlib.sha256(self.lab.name.encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in digest[:3]) + f":{network:02x}:{self.nodes.index(name) + 1:02x}"


def _uml_version() -> str:
    if not shutil.which(UML):
        return "?"
    return subprocess.run([UML, "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or "?"


def _meminfo(field: str) -> int:
    """A /proc/meminfo field, in KiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
