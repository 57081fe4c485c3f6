"""Fault primitives: what can be done to one node of a running lab, each with its heal.

A `Fault` is data (a primitive, a node, its arguments); the primitive says how to apply
it, how to heal it and how to tell that nothing of it remains, all through the provider's
own verbs (halab.providers.base), so every provider injects a fault the same way. A new
kind of fault (a packet filter, traffic shaping, a signal) is one more entry in PRIMITIVES.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from halab.errors import UsageError
from halab.providers import grayfaults
from halab.providers.base import Provider

# A node reaching a neighbour: every node runs sshd on its lab address (python3 is on every
# node; ping is not on the local lab's host). Exits 0 on the first connection made.
REACH = (
    "python3 -c 'import socket, sys, time\n"
    "for _ in range({tries}):\n"
    "    try:\n"
    '        socket.create_connection(("{address}", 22), 1).close(); sys.exit(0)\n'
    "    except OSError:\n"
    "        time.sleep(1)\n"
    "sys.exit(1)'"
)
REACH_TRIES = 5
# What each service's process is called on a node, for telling a healed stop from a stuck one.
PROCESS = {"keepalived": "keepalived", "nginx": "nginx", "smtpd": ""}


@dataclass(frozen=True)
class Fault:
    """One fault on one node. `service` is the service a `service` fault stops; `seconds`
    how long a `wait` lasts (or a flap's half period); `amount` a network fault's size (a
    loss percentage, a number of flaps: halab.providers.netfaults)."""

    primitive: str
    node: str = ""
    service: str = ""
    seconds: float = 0.0
    amount: float = 0.0

    def __post_init__(self) -> None:
        if self.primitive not in PRIMITIVES:
            raise UsageError(f"unknown fault {self.primitive!r}; known: {', '.join(PRIMITIVES)}")

    @property
    def kind(self) -> Primitive:
        return PRIMITIVES[self.primitive]

    def apply(self, provider: Provider) -> None:
        self.kind.apply(provider, self)

    def heal(self, provider: Provider) -> None:
        self.kind.heal(provider, self)

    def remains(self, provider: Provider) -> str:
        """What of the fault is still on the lab after its heal, in words; "" when nothing."""
        return self.kind.remains(provider, self)

    @property
    def applied(self) -> str:
        """The fault's application in words, e.g. "stop keepalived on server3"."""
        return self.kind.applied.format(node=self.node, service=self.service, seconds=self.seconds, amount=self.amount)

    @property
    def healed(self) -> str:
        """Its heal in words, e.g. "start keepalived on server3"."""
        return self.kind.healed.format(node=self.node, service=self.service, seconds=self.seconds, amount=self.amount)


Verb = Callable[[Provider, Fault], None]
Check = Callable[[Provider, Fault], str]


@dataclass(frozen=True)
class Primitive:
    """How one kind of fault is applied and healed, and how its absence is checked."""

    applied: str
    healed: str
    apply: Verb
    heal: Verb
    remains: Check


def _service_down(provider: Provider, fault: Fault) -> str:
    """A healed service stop: the service's process runs again."""
    name = PROCESS.get(fault.service)
    if not name:
        return ""
    running = provider.remote.run(fault.node, f"pidof {shlex.quote(name)}", timeout=10)
    return "" if running.returncode == 0 else f"{fault.service} is not running on {fault.node}"


def _node_down(provider: Provider, fault: Fault) -> str:
    """A healed crash: the node's machine runs again."""
    return "" if fault.node in provider.alive_nodes() else f"{fault.node} is not running"


def _link_down(provider: Provider, fault: Fault) -> str:
    """A healed cut: the node reaches a neighbour on its lab network again (a TCP connection to
    the neighbour's sshd, from inside the node, a few tries over at most REACH_TRIES seconds)."""
    lab = provider.lab
    role = lab.nodes[fault.node].role
    peers = [name for name in lab.role(role) if name != fault.node] or list(lab.role("director"))
    address = lab.nodes[peers[0]].address
    reached = provider.remote.run(
        fault.node, REACH.format(address=address, tries=REACH_TRIES), timeout=REACH_TRIES + 10
    )
    return "" if reached.returncode == 0 else f"{fault.node} still cannot reach {peers[0]} ({address})"


def _nothing(provider: Provider, fault: Fault) -> str:
    return ""


PRIMITIVES: dict[str, Primitive] = {
    "service": Primitive(
        "stop {service} on {node}",
        "start {service} on {node}",
        lambda provider, fault: provider.stop_service(fault.node, fault.service),
        lambda provider, fault: provider.start_service(fault.node, fault.service),
        _service_down,
    ),
    "crash": Primitive(
        "crash {node}",
        "restart {node}",
        lambda provider, fault: provider.crash(fault.node),
        lambda provider, fault: provider.restart(fault.node),
        _node_down,
    ),
    "link": Primitive(
        "cut {node}'s link",
        "restore {node}'s link",
        lambda provider, fault: provider.cut_link(fault.node),
        lambda provider, fault: provider.restore_link(fault.node),
        _link_down,
    ),
    "wait": Primitive(
        "idle",
        "idle",
        lambda provider, fault: time.sleep(fault.seconds),
        lambda provider, fault: None,
        _nothing,
    ),
}

# The gray failures: a node half broken rather than gone (halab.providers.grayfaults).
PRIMITIVES.update({name: Primitive(*verbs) for name, verbs in grayfaults.VERBS.items()})

# The network faults (firewalls, loss, flaps, the lab switch's filters) live in their own
# module, which needs Fault and Primitive above: registered last.
from halab.providers.netfaults import NETWORK  # noqa: E402

PRIMITIVES.update({name: Primitive(*fields) for name, fields in NETWORK.items()})
