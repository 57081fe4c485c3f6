"""The lifecycle every provider shares, so tasks and tests never look inside one.

`Provider` holds what does not depend on the machinery: the preflight gate, booting
with tear-down on failure (unless kept for debugging), VRRP convergence, status, node
names checked before any fault verb, and commands over the lab's ssh_config. A provider
fills in only what differs (template methods): what it prepares before booting, its
preflight items, `boot`, `teardown`, which nodes are alive, where a service logs and
which logs the host keeps, and how to stop a service, crash a node or cut its link.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from halab.errors import ProviderError, UsageError
from halab.paths import LabPaths
from halab.remote import Remote
from halab.spec import Lab

if TYPE_CHECKING:
    from halab.prove.labstate import NodeState

Progress = Callable[[str], None]
# The one service each role runs (what a fault verb may stop or start there).
ROLE_SERVICE = {"director": "keepalived", "realserver": "nginx", "client": "smtpd"}
SERVICES = tuple(ROLE_SERVICE.values())
# nginx writes its own error log (error_log in the rendered nginx.conf), on every provider.
NGINX_ERROR_LOG = "/var/log/nginx/error.log"


@dataclass(frozen=True)
class Requirement:
    """One preflight item: what this host must have, whether it has it, and how to fix it if not."""

    name: str
    met: bool
    fix: str = ""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str
    address: str
    up: bool
    vrrp: str
    vips: tuple[str, ...]


# Seconds a restarted node has to answer over the lab's ssh (a TCG VM's sshd included).
RESTART_SSH_TIMEOUT = 120.0


class Provider(ABC):
    """One lab on one kind of machinery. `lab` is the lab *as this provider runs it* (e.g. its
    NIC name): the only view anything measuring the lab may use."""

    name: ClassVar[str]
    converge_timeout: float  # seconds VRRP may take to place every VIP after boot

    def __init__(self, lab: Lab, progress: Progress = print) -> None:
        self.lab = self.as_run(lab)
        self.paths = LabPaths(lab.name)
        self.progress = progress
        self.remote = Remote(self.paths.ssh_config)

    @classmethod
    def as_run(cls, lab: Lab) -> Lab:
        """The lab as this provider runs it; the file's lab unless the machinery differs."""
        return lab

    # --- what each provider fills in --------------------------------------------------

    def prepare(self, lab_given: bool) -> None:  # noqa: B027 (a hook: most providers need nothing)
        """Make what this host must have before the lab boots and the preflight checks (slow
        work, such as compiling); lab_given: the lab came from a file the user passed, so its
        versions are the user's. Nothing, unless a provider needs something."""

    @abstractmethod
    def preflight(self) -> list[Requirement]:
        """Everything up() needs from this host, each with its fix."""

    @abstractmethod
    def running(self) -> bool:
        """Every node of the lab is up."""

    @abstractmethod
    def boot(self) -> None:
        """Start every node and give it its role; return once each answers over ssh."""

    @classmethod
    @abstractmethod
    def teardown(cls, paths: LabPaths) -> None:
        """Remove everything a lab of this name left on the host, from its state directory
        alone (no lab file: it also cleans up after a crash). Idempotent."""

    @classmethod
    @abstractmethod
    def footprint(cls, paths: LabPaths) -> str:
        """What a lab of this name has on the host now, in a few words ("" when nothing): from
        its state directory and the host alone, like teardown."""

    @abstractmethod
    def alive_nodes(self) -> set[str]:
        """The nodes whose machine is running (whether or not their services are)."""

    @abstractmethod
    def service_command(self, service: str, verb: str) -> str:
        """The shell command on a node that starts or stops one of SERVICES."""

    @abstractmethod
    def log_command(self, service: str) -> str:
        """The shell command on a node that prints the log of one of SERVICES (a file, or the
        journal: where it logs depends on how the provider runs it)."""

    @abstractmethod
    def host_logs(self, node: str) -> list[Path]:
        """The logs of a node this host keeps, readable without the node (after a crash too):
        what `lab.logs` prints. Some may not exist yet."""

    @abstractmethod
    def _crash(self, node: str) -> None: ...

    @abstractmethod
    def _restart(self, node: str) -> None: ...

    @abstractmethod
    def _cut_link(self, node: str) -> None: ...

    @abstractmethod
    def _restore_link(self, node: str) -> None: ...

    # --- the lifecycle --------------------------------------------------------------------

    def up(self, keep: bool = False, recreate: bool = False) -> None:
        """Boot the lab and wait for VRRP to place every VIP; on any failure (Ctrl-C too) tear
        down what was started, unless keep. A lab already up from this very file is left as it
        is; one booted from another version of the file is refused, or with recreate torn down
        and booted again."""
        missing = [item for item in self.preflight() if not item.met]
        if missing:
            raise ProviderError("preflight failed:\n" + "\n".join(f"  - {i.name}: fix: {i.fix}" for i in missing))
        if self.running():
            if recreate and self.drift():
                self.progress(f"--recreate: lab {self.lab.name!r} runs another version of its file: tearing it down")
                self.down()
            else:
                self.check_as_run()
                self.progress(f"lab {self.lab.name!r} is already up")
                return
        started = time.monotonic()
        try:
            self.boot()
            self.wait_converged()
            self.record_as_run()
        except BaseException as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            if keep:
                self.progress(
                    f"{why}; --keep: leaving lab {self.lab.name!r} as it is for debugging; `invoke lab.down` removes it"
                )
            else:
                self.progress(f"{why}: tearing down what lab {self.lab.name!r} had started")
                self.down()
                self.progress(f"lab {self.lab.name!r} torn down")
            raise
        self.progress(f"lab {self.lab.name!r} up: {len(self.lab.nodes)} nodes in {time.monotonic() - started:.1f} s")

    def down(self) -> None:
        """Tear the lab down; idempotent."""
        self.teardown(self.paths)
        self.paths.as_run.unlink(missing_ok=True)

    # --- the lab as run -----------------------------------------------------------------

    def record_as_run(self) -> None:
        """Keep the lab as booted: later commands compare their file with it."""
        self.paths.as_run.parent.mkdir(parents=True, exist_ok=True)
        self.paths.as_run.write_text(json.dumps(self.lab.model_dump(mode="json", by_alias=True), indent=1) + "\n")

    def drift(self) -> list[str]:
        """How the lab file now differs from the lab as booted, one `field: was -> now` each
        (empty when they agree, or when no record exists: a lab booted by an older version)."""
        try:
            booted = json.loads(self.paths.as_run.read_text())
        except (OSError, ValueError):
            return []
        return _differences(booted, self.lab.model_dump(mode="json", by_alias=True))

    def check_as_run(self) -> None:
        """Refuse to act on, or judge, a running lab whose file has changed since it booted:
        the results would be recorded against settings that are not running."""
        changes = self.drift()
        if changes:
            shown = "\n".join(f"  {change}" for change in changes[:12])
            raise ProviderError(
                f"lab {self.lab.name!r} is up, but its file changed since it booted:\n{shown}\n"
                f"`invoke lab.up --recreate` boots it as the file is now; or put the file back"
            )

    @classmethod
    def down_by_name(cls, name: str) -> None:
        """Tear down the lab called name, when its file is gone or was never loaded."""
        cls.teardown(LabPaths(name))

    def ssh_config(self) -> Path:
        return self.paths.ssh_config

    def wait_converged(self) -> None:
        """Until each VIP sits on exactly one director (VRRP's first election) and, with preempt,
        on its MASTER: the first director up may hold it until the MASTER's own start. Or
        ProviderError."""
        wanted = self.lab.masters() if self.lab.vrrp.preempt else None
        deadline = time.monotonic() + self.converge_timeout
        while time.monotonic() < deadline:
            held = [(vip, row.name) for row in self.status() if row.role == "director" for vip in row.vips]
            if sorted(vip for vip, _ in held) == sorted(str(v) for v in self.lab.vips) and (
                wanted is None or dict(held) == wanted
            ):
                return
            time.sleep(0.2)
        raise ProviderError(
            f"VRRP did not place every VIP on exactly one director within "
            f"{self.converge_timeout:g} s; see `invoke lab.logs` of the directors"
        )

    # --- status ---------------------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        """Every node: up, its VRRP state and the VIPs it holds, as the nodes report them
        (halab.prove.labstate, the one reader of live state: one round trip per node)."""
        from halab.prove.labstate import LabState  # prove reads what providers run

        running = self.alive_nodes()
        snapshot = LabState(self).read(("addresses", "keepalived"), nodes=running, timeout=5)
        rows = []
        for name, node in self.lab.nodes.items():
            state = snapshot.nodes.get(name)
            held = tuple(sorted(str(vip) for vip in self.lab.vips if state and str(vip) in state.addresses))
            up = state is not None
            rows.append(NodeStatus(name, node.role, str(node.address), up, _vrrp(node.role, state, bool(held)), held))
        return rows

    # --- faults: node names checked here, the machinery in the provider --------------------

    def present(self) -> bool:
        """Something of the lab runs on this host (its nodes may be crashed or cut)."""
        return bool(self.footprint(self.paths))

    def node(self, name: str) -> str:
        """name, if the lab has such a node and the lab is on this host: ProviderError saying
        the lab is not up, rather than a fault verb's false success or the machinery's error."""
        self.lab.known(name)
        if not self.present():
            raise ProviderError(f"lab {self.lab.name!r} is not up on this host: `invoke lab.up` first")
        return name

    def alive(self, node: str) -> bool:
        """Whether one node runs; providers with a cheaper answer than alive_nodes() give it."""
        return node in self.alive_nodes()

    def alive_node(self, name: str) -> str:
        """name, if that node of a lab that is up runs: a fault verb on a node that is down
        answers at once with what to do, not with ssh's timeout or the machinery's error."""
        if not self.alive(self.node(name)):
            raise ProviderError(
                f"{name} is down (crashed or powered off): `invoke fault.restart {name}` boots it again"
            )
        return name

    def stop_service(self, node: str, service: str) -> None:
        command = self.service_command(self._service(node, service), "stop")
        self.remote.check(self.alive_node(node), command)

    def start_service(self, node: str, service: str) -> None:
        command = self.service_command(self._service(node, service), "start")
        self.remote.check(self.alive_node(node), command)

    def crash(self, node: str) -> None:
        """Kill the node outright: no clean shutdown, no last VRRP advert."""
        self._crash(self.alive_node(node))
        self.remote.forget(node)

    def restart(self, node: str) -> None:
        """Boot the node again (crashing it first if it runs); returns once it answers over the
        lab's ssh: its new master connection (a key exchange, costly in an emulated guest) is
        part of the restart, not of whatever reads the lab next."""
        self._restart(self.node(node))
        self.remote.forget(node)
        self._answers(node, RESTART_SSH_TIMEOUT)

    def _answers(self, node: str, timeout: float) -> None:
        """Until one ssh round trip to node succeeds: a node still booting refuses or times out."""
        deadline = time.monotonic() + timeout
        while (result := self.remote.run(node, "true", timeout=30)).returncode != 0:
            if time.monotonic() > deadline:
                why = result.stderr.strip() or f"exit code {result.returncode}"
                raise ProviderError(f"{node} did not answer over ssh within {timeout:g} s of its restart: {why}")
            time.sleep(1)

    def cut_link(self, node: str) -> None:
        self._cut_link(self.alive_node(node))
        self.remote.forget(node)

    def restore_link(self, node: str) -> None:
        self._restore_link(self.alive_node(node))
        self.remote.forget(node)  # one opened during the cut may still be backing off

    # --- the lab switch: only a provider that runs it can filter it ------------------------

    def filter_switch(self, rule: list[str], add: bool = True, missing_ok: bool = False) -> None:
        """Add (or delete) one drop rule on the lab's switch (ebtables's match syntax: the
        local lab's switch is a Linux bridge). A provider whose network is not halab's refuses."""
        raise UsageError(self._no_switch())

    def switch_filters(self) -> list[str]:
        """The switch's filter rules as listed, one a line: [] when it has none (or no switch)."""
        return []

    def switch_port(self, node: str) -> str:
        """The switch port node is plugged into."""
        raise UsageError(self._no_switch())

    def switch_mac(self, node: str) -> str:
        """node's MAC on the lab network, as the switch sees its frames."""
        raise UsageError(self._no_switch())

    def _no_switch(self) -> str:
        return (
            f"the {self.name} provider's lab network is not a switch halab runs: switch faults "
            "(multicast-dropped, one-way, garp-lost) run on the local provider; here, vrrp-blocked "
            "and director-partition split the pair inside the nodes"
        )

    def _service(self, node: str, service: str) -> str:
        """service, if it is one of SERVICES and the one node's role runs."""
        if service not in SERVICES:
            raise UsageError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
        role = self.lab.nodes[self.lab.known(node)].role
        if ROLE_SERVICE[role] != service:
            raise UsageError(f"{node} is a {role}: it runs {ROLE_SERVICE[role]}, not {service}")
        return service


def _vrrp(role: str, state: NodeState | None, holds: bool) -> str:
    """What a node says about VRRP: MASTER, BACKUP, stopped, unreachable, or "-" (not a
    director, or not running)."""
    if state is None:
        return "-"
    if not state.reachable:
        return "unreachable"
    if role != "director":
        return "-"
    return ("MASTER" if holds else "BACKUP") if state.keepalived else "stopped"


def _differences(was: object, now: object, where: str = "") -> list[str]:
    """`field: was -> now` for every leaf that differs between two JSON-like trees."""
    if isinstance(was, dict) and isinstance(now, dict):
        return [
            change
            for key in sorted(set(was) | set(now), key=str)
            for change in _differences(was.get(key), now.get(key), f"{where}.{key}" if where else str(key))
        ]
    return [] if was == now else [f"{where}: {json.dumps(was)} -> {json.dumps(now)}"]
