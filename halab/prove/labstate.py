"""The live state of a running lab, as the nodes themselves report it: the one reader.

Who holds each VIP, which real servers each VIP's IPVS service forwards to, each node's
MACs, the client's ARP entries, and how many VRRP transitions each keepalived has logged:
read with one ssh round trip per node per poll, all nodes at once, so a poll takes about
one round trip (~0.1 s with the lab's ControlMaster) and sub-second labs can be watched.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from halab.prove import ipvs

if TYPE_CHECKING:
    from halab.providers.base import Provider

# Separates the sections of one node's answer; cannot occur in any command's output.
MARK = "@@halab-section "
PARTS = ("addresses", "keepalived", "macs", "ipvs", "neigh", "transitions")
# The parts only one role has to give.
ONLY_ON = {"ipvs": "director", "neigh": "client", "transitions": "director"}
# What a VRRP instance logs on every state change (keepalived 2.x).
TRANSITION = "Entering [A-Z]* STATE"


@dataclass(frozen=True)
class NodeState:
    """One node's answer: `reachable` False when ssh failed (then everything else is empty)."""

    reachable: bool
    addresses: frozenset[str] = frozenset()  # IPv4 addresses on the lab NIC, without prefix
    keepalived: bool = False
    macs: frozenset[str] = frozenset()  # of the lab NIC (and the NAT NIC)
    ipvs: dict[tuple[str, str, int], ipvs.Service] = field(default_factory=dict)
    neigh: dict[str, str] = field(default_factory=dict)  # address -> MAC ("" while unresolved)
    transitions: int = -1  # VRRP state changes logged so far; -1 when unreadable


@dataclass(frozen=True)
class Snapshot:
    """Every node's state at one poll, and what the measuring code asks of it."""

    nodes: dict[str, NodeState]

    def holders(self, vip: str) -> list[str]:
        """The nodes that hold vip now (exactly one director in a healthy lab)."""
        return sorted(name for name, state in self.nodes.items() if vip in state.addresses)

    def members(self, holder: str, key: tuple[str, str, int]) -> set[str] | None:
        """The addresses holder's IPVS service key forwards to; None when it has no such service."""
        service = self.nodes[holder].ipvs.get(key) if holder in self.nodes else None
        return {d.address for d in service.destinations} if service else None

    def macs(self) -> dict[str, str]:
        """MAC -> node, for naming a VIP's (or a gateway's) owner from an ARP entry."""
        return {mac: name for name, state in self.nodes.items() for mac in state.macs}


class LabState:
    """Reads the lab as its provider runs it (the NIC names of the lab as run)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.lab = provider.lab

    def read(
        self,
        parts: tuple[str, ...] = ("addresses", "keepalived", "ipvs"),
        timeout: float = 10,
        nodes: Iterable[str] | None = None,
    ) -> Snapshot:
        """The nodes' state (default: every node's), the parts asked for, one round trip per
        node, in parallel."""
        nodes = [name for name in self.lab.nodes if nodes is None or name in set(nodes)]
        if not nodes:
            return Snapshot({})
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            states = pool.map(lambda node: self._node(node, parts, timeout), nodes)
            return Snapshot(dict(zip(nodes, states, strict=True)))

    def holders(self) -> dict[str, list[str]]:
        """VIP -> the directors holding it now."""
        snapshot = self.read(("addresses",))
        return {str(vip): snapshot.holders(str(vip)) for vip in self.lab.vips}

    def members(self, snapshot: Snapshot | None = None) -> set[str] | None:
        """The real servers (by name) in the first service's IPVS table on the director that
        holds its VIP; None when not exactly one director holds it."""
        snapshot = snapshot or self.read()
        service = self.lab.virtual_services[0]
        holder = snapshot.holders(str(service.vip))
        if len(holder) != 1:
            return None
        found = snapshot.members(holder[0], (service.protocol, str(service.vip), service.port)) or set()
        return {name for name, node in self.lab.nodes.items() if str(node.address) in found}

    def table_problems(self, snapshot: Snapshot, weights: dict[str, int]) -> list[str]:
        """How the first service's IPVS table on its VIP's holder differs from weights (real
        server -> weight): each one present with its weight, no other (what a reload must leave)."""
        service = self.lab.virtual_services[0]
        holder = snapshot.holders(str(service.vip))
        if len(holder) != 1:
            return [f"IPVS table not read: {service.vip} held by {holder or 'nobody'}"]
        table = snapshot.nodes[holder[0]].ipvs.get((service.protocol, str(service.vip), service.port))
        found = {d.address: d.weight for d in table.destinations} if table else {}
        wanted = {str(self.lab.nodes[name].address): weight for name, weight in weights.items()}
        if found == wanted:
            return []
        return [f"IPVS table of {service.vip} on {holder[0]}: {found or 'none'}, expected {wanted} (address: weight)"]

    def script(self, node: str, parts: tuple[str, ...]) -> str:
        """One shell line printing every part asked for, each after its MARK."""
        role = self.lab.nodes[node].role
        lines = [
            f"echo '{MARK}{part}'" + (f"; {command}" if (command := self._command(part, role)) else "")
            for part in parts
        ]
        return "; ".join(lines) + "; true"

    def _command(self, part: str, role: str) -> str:
        """The shell command that prints one part on a node of role ("": nothing to read there)."""
        if ONLY_ON.get(part, role) != role:
            return ""
        lab_nic = shlex.quote(self.lab.vrrp.interface)
        nics = [self.lab.vrrp.interface] + ([self.lab.nat.interface] if self.lab.nat else [])
        commands = {
            "addresses": lambda: f"ip -4 -o addr show dev {lab_nic}",
            "keepalived": lambda: "pidof keepalived >/dev/null && echo running",
            "macs": lambda: "; ".join(f"cat /sys/class/net/{shlex.quote(nic)}/address 2>/dev/null" for nic in nics),
            "ipvs": lambda: "ipvsadm -Ln 2>/dev/null",
            "neigh": lambda: f"ip -4 neigh show dev {lab_nic}",
            "transitions": lambda: f"({self.provider.log_command('keepalived')}) 2>/dev/null | grep -c '{TRANSITION}'",
        }
        return commands[part]()

    def _node(self, node: str, parts: tuple[str, ...], timeout: float) -> NodeState:
        result = self.provider.remote.run(node, self.script(node, parts), timeout=timeout)
        if result.returncode != 0:
            return NodeState(False)
        return parse(result.stdout)


def sections(output: str) -> dict[str, str]:
    """A node's answer split at each MARK: part -> its text."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARK):
            current = found.setdefault(line[len(MARK) :].strip(), [])
        elif current is not None:
            current.append(line)
    return {part: "\n".join(lines) for part, lines in found.items()}


def parse(output: str) -> NodeState:
    """One node's answer to `LabState.script`."""
    parts = sections(output)
    count = parts.get("transitions", "").strip()
    return NodeState(
        True,
        addresses=_addresses(parts.get("addresses", "")),
        keepalived="running" in parts.get("keepalived", ""),
        macs=frozenset(line.strip() for line in parts.get("macs", "").splitlines() if line.strip()),
        ipvs=ipvs.parse(parts.get("ipvs", "")),
        neigh=_neighbours(parts.get("neigh", "")),
        transitions=int(count) if count.isdigit() else -1,
    )


def _addresses(text: str) -> frozenset[str]:
    """`ip -4 -o addr show dev X` -> its addresses, without prefix lengths."""
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if "inet" in fields[:-1]:
            found.add(fields[fields.index("inet") + 1].split("/")[0])
    return frozenset(found)


def _neighbours(text: str) -> dict[str, str]:
    """`ip neigh show dev X` -> address -> MAC ("" while unresolved: FAILED, INCOMPLETE)."""
    found = {}
    for line in text.splitlines():
        fields = line.split()
        if fields:
            found[fields[0]] = fields[fields.index("lladdr") + 1] if "lladdr" in fields else ""
    return found
