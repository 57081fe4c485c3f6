"""What `invoke lab.show` draws: a lab's topology from its file and, when it runs, its live state.

The lab file says who is who (roles, addresses, each director's VRRP state and priority
per instance, the VIPs and their VRIDs, the switch) and which way a request goes: from
the client to the director holding the VIP, which forwards it to a real server; with DR
and TUN the real server answers the client directly, from the VIP it holds on lo. A
running lab adds what is true now: who holds which VIP, and the members of each VIP's
IPVS table on its holder, with their weights and connection counts. One view, rendered
as text (stdout), DOT (for graphviz), PNG or SVG (matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halab import render
from halab.prove import ipvs
from halab.providers.base import NodeStatus, Provider
from halab.spec import Lab

FORMATS = ("text", "png", "svg", "dot")
# How a request's reply reaches the client, by LVS forwarding method.
REPLIES = {
    "DR": "straight to the client, from the VIP on its lo (the director never sees replies)",
    "TUN": "straight to the client, from the VIP on its tunnel (the director never sees replies)",
    "NAT": "back through the director, which rewrites the source to the VIP",
}
FORWARDS = {"DR": "same packet, MAC rewritten", "TUN": "IP-in-IP", "NAT": "destination rewritten"}
COLORS = {"director": "#cfe2ff", "realserver": "#d1e7dd", "client": "#fff3cd"}
FLOW_COLORS = {"request": "#0d6efd", "forward": "#fd7e14", "reply": "#198754"}


@dataclass(frozen=True)
class Member:
    """A real server in the IPVS table of a VIP's holder, as it is now."""

    node: str
    weight: int
    active: int  # connections established now
    inactive: int  # connections IPVS still tracks (closing, TIME_WAIT)
    conns: int  # every connection since the table was made (ipvsadm --stats)


@dataclass(frozen=True)
class Live:
    """A running lab's state: each node's status, and each service's IPVS members on its
    VIP's holder (None when no single director holds the VIP)."""

    nodes: dict[str, NodeStatus]
    members: dict[str, tuple[Member, ...] | None]  # "vip:port" -> members


@dataclass(frozen=True)
class Flow:
    """One hop a request or its reply takes."""

    source: str
    target: str
    kind: str  # request, forward or reply
    label: str


def live(provider: Provider) -> Live | None:
    """The running lab's state through the provider (status, then ipvsadm on each VIP's
    holder); None when nothing of the lab runs (a crashed node is shown down, not the lab)."""
    if not provider.present():
        return None
    nodes = {row.name: row for row in provider.status()}
    addresses = {str(node.address): name for name, node in provider.lab.nodes.items()}
    members: dict[str, tuple[Member, ...] | None] = {}
    for service in provider.lab.virtual_services:
        holders = [row.name for row in nodes.values() if str(service.vip) in row.vips]
        key = f"{service.vip}:{service.port}"
        if len(holders) != 1:
            members[key] = None
            continue
        which = (service.protocol, str(service.vip), service.port)
        table = ipvs.parse(provider.remote.run(holders[0], "ipvsadm -Ln", timeout=10).stdout).get(which)
        stats = ipvs.parse(provider.remote.run(holders[0], "ipvsadm -Ln --stats", timeout=10).stdout).get(which)
        members[key] = tuple(
            Member(
                addresses.get(d.address, d.address),
                d.weight,
                d.active,
                d.inactive,
                (stats.destination_stats if stats else {}).get(f"{d.address}:{d.port}", {}).get("conns", 0),
            )
            for d in (table.destinations if table else [])
        )
    return Live(nodes, members)


# --- what the renderings share --------------------------------------------------------


def holders(lab: Lab, now: Live | None) -> dict[str, str]:
    """VIP -> the director holding it: now, when the lab runs and one director does; else
    the one the lab file makes MASTER of it."""
    held = lab.masters()
    if now:
        for vip in held:
            current = [row.name for row in now.nodes.values() if vip in row.vips]
            held[vip] = current[0] if len(current) == 1 else held[vip]
    return held


def vrids(lab: Lab) -> dict[str, int]:
    """VIP -> the VRID of the VRRP instance that carries it."""
    director = next(iter(lab.role("director")))
    return {vip: instance.vrid for instance in render.instances(lab, director) for vip in instance.vips}


def node_lines(lab: Lab, name: str, now: Live | None, members: bool = True) -> list[str]:
    """What a node's box says: name, role and address; a director's state and priority per
    VRRP instance; and, from a running lab, what it is doing now (with members: a real
    server's IPVS entries, which the text lists under each VIP instead)."""
    node = lab.nodes[name]
    lines = [name, f"{node.role} {node.address}"]
    if node.role == "director":
        lines += [f"VRID {i.vrid}: {i.state} priority {i.priority}" for i in render.instances(lab, name)]
    if node.role == "realserver":
        lines += [
            f"{service.vip}:{service.port} weight {service.real_servers[name].weight}"
            for service in lab.virtual_services
            if name in service.real_servers
        ]
    if now:
        row = now.nodes.get(name)
        state = "down" if row is None or not row.up else "up"
        if row is not None and row.up and node.role == "director":
            state += f", {row.vrrp}" + (f", holds {' '.join(row.vips)}" if row.vips else "")
        lines.append(f"now: {state}")
        for member in members_of(name, now) if members else []:
            lines += [
                f"now: in IPVS, weight {member.weight}",
                f"{member.active} active, {member.inactive} inactive, {member.conns} total connections",
            ]
    return lines


def members_of(server: str, now: Live) -> list[Member]:
    """A real server's entries in the IPVS tables now (one per service that has it)."""
    return [m for entries in now.members.values() for m in entries or () if m.node == server]


def member_text(member: Member) -> str:
    return (
        f"in IPVS, weight {member.weight}, {member.active} active / {member.inactive} inactive, "
        f"{member.conns} connections"
    )


def flows(lab: Lab, now: Live | None) -> list[Flow]:
    """Every hop a request to a VIP takes, and its reply, for each virtual service."""
    held = holders(lab, now)
    hops = []
    client = lab.client
    for service in lab.virtual_services:
        director = held[str(service.vip)]
        hops.append(Flow(client, director, "request", f"to VIP {service.vip}:{service.port}/{service.protocol}"))
        for server in service.real_servers:
            hops.append(Flow(director, server, "forward", f"{service.lb_algo}/{service.lb_kind}"))
            back = (server, client) if service.lb_kind != "NAT" else (server, director)
            hops.append(Flow(*back, "reply", f"reply from {service.vip}"))
    return list(dict.fromkeys(hops))


def title(lab: Lab, now: Live | None) -> str:
    down = [row.name for row in now.nodes.values() if not row.up] if now else []
    state = ("running" + (f"; down: {', '.join(down)}" if down else "")) if now else "not running: the lab file's view"
    return f"lab {lab.name!r}: {lab.mode}, lab switch {lab.subnet} ({state})"


def switch_text(lab: Lab) -> str:
    """The lab switch and how VRRP crosses it."""
    vrrp = f"VRRPv{lab.vrrp.version} " + (
        f"unicast between {', '.join(lab.vrrp.unicast_peers)}" if lab.vrrp.unicast_peers else "multicast"
    )
    return f"lab switch {lab.subnet}: {vrrp}, advert every {lab.vrrp.advert_int:g} s" + (
        "" if lab.multicast else ", multicast dropped"
    )


# --- renderings ----------------------------------------------------------------------------


def text(lab: Lab, now: Live | None) -> str:
    """The topology as lines for a terminal."""
    lines = [title(lab, now), f"  {switch_text(lab)}", "nodes:"]
    for name in lab.nodes:
        first, second, *rest = node_lines(lab, name, now, members=False)
        lines.append(f"  {first:<10} {second:<28} {'; '.join(rest)}".rstrip())
    held, ids = holders(lab, now), vrids(lab)
    lines.append("VIPs:")
    for service in lab.virtual_services:
        vip = str(service.vip)
        lines.append(
            f"  {vip}:{service.port}/{service.protocol} (VRID {ids[vip]}) on {held[vip]}: "
            f"{service.lb_algo}/{service.lb_kind} to {', '.join(service.real_servers)}"
        )
        entries = now.members.get(f"{vip}:{service.port}", ()) if now else ()
        if now and entries is None:
            lines.append("    now: no single director holds it")
        lines += [f"    now: {member.node} {member_text(member)}" for member in entries or ()]
    lines.append("flow:")
    client = lab.client
    for service in lab.virtual_services:
        lines.append(
            f"  request: {client} -> VIP {service.vip} on {held[str(service.vip)]} -> "
            f"{' | '.join(service.real_servers)} ({service.lb_algo}, {FORWARDS[service.lb_kind]})"
        )
        lines.append(f"  reply:   {' | '.join(service.real_servers)} -> {client}: {REPLIES[service.lb_kind]}")
    return "\n".join(lines)


def dot(lab: Lab, now: Live | None) -> str:
    """The topology in graphviz's DOT language: nodes on the switch, and the flows."""
    lines = [
        f"digraph {_quoted(lab.name)} {{",
        f"  graph [label={_quoted(title(lab, now))}, labelloc=t, fontname=Helvetica];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica];',
        "  edge [fontname=Helvetica, fontsize=10];",
        f'  switch [label={_quoted(switch_text(lab))}, shape=hexagon, fillcolor="#e9ecef"];',
    ]
    for name, node in lab.nodes.items():
        label = "\n".join(node_lines(lab, name, now))
        lines.append(f"  {_quoted(name)} [label={_quoted(label)}, fillcolor={_quoted(COLORS[node.role])}];")
        lines.append(f"  {_quoted(name)} -> switch [dir=none, color=gray];")
    for flow in flows(lab, now):
        lines.append(
            f"  {_quoted(flow.source)} -> {_quoted(flow.target)} [label={_quoted(flow.label)}, "
            f"color={_quoted(FLOW_COLORS[flow.kind])}, constraint=false];"
        )
    return "\n".join([*lines, "}"]) + "\n"


def _quoted(value: str) -> str:
    """A DOT double-quoted string (newlines as DOT's centred line breaks)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def draw(lab: Lab, now: Live | None, path: Path) -> Path:
    """The topology as a picture (PNG or SVG, by the path's suffix): the client above the
    switch, directors and real servers below it, each request's hops as arrows."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.lines import Line2D

    below = [*lab.role("director"), *lab.role("realserver")]
    width = max(len(below), 2) * 3.2
    spot = {name: ((index + 0.5) * width / len(below), 1.0) for index, name in enumerate(below)}
    spot.update({name: (width / 2, 5.0) for name in lab.role("client")})
    figure, axes = pyplot.subplots(figsize=(width + 1, 7.5), dpi=100)
    axes.set_xlim(0, width)
    axes.set_ylim(-0.6, 6.2)
    axes.axis("off")
    axes.plot([0.2, width - 0.2], [3.0, 3.0], color="#6c757d", linewidth=6, solid_capstyle="round")
    axes.text(width / 2, 3.2, switch_text(lab), ha="center", va="bottom", fontsize=9, color="#495057")
    for name, (x, y) in spot.items():
        axes.plot([x, x], [y, 3.0], color="#adb5bd", linewidth=1.5, zorder=1)
        axes.text(
            x,
            y,
            "\n".join(node_lines(lab, name, now)),
            ha="center",
            va="center",
            fontsize=8,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.5", "facecolor": COLORS[lab.nodes[name].role], "edgecolor": "#495057"},
        )
    for vip, director in holders(lab, now).items():
        x, y = spot[director]
        axes.text(
            x, y - 0.55, f"VIP {vip} (VRID {vrids(lab)[vip]})", ha="center", fontsize=8, color="#842029", weight="bold"
        )
    for flow in flows(lab, now):
        bend = {"request": 0.15, "forward": -0.35, "reply": -0.2}[flow.kind]
        axes.annotate(
            "",
            xy=spot[flow.target],
            xytext=spot[flow.source],
            zorder=4,
            arrowprops={
                "arrowstyle": "-|>",
                "color": FLOW_COLORS[flow.kind],
                "linewidth": 1.4,
                "shrinkA": 24,
                "shrinkB": 24,
                "connectionstyle": f"arc3,rad={bend}",
            },
        )
    kinds = [flow.kind for flow in flows(lab, now)]
    legend = {
        "request": "request: client to the VIP's holder",
        "forward": "forwarded by IPVS: " + ", ".join(sorted({FORWARDS[s.lb_kind] for s in lab.virtual_services})),
        "reply": "reply: " + "; ".join(sorted({REPLIES[s.lb_kind] for s in lab.virtual_services})),
    }
    axes.legend(
        [Line2D([0], [0], color=FLOW_COLORS[kind], linewidth=2) for kind in legend if kind in kinds],
        [text for kind, text in legend.items() if kind in kinds],
        loc="lower center",
        fontsize=8,
        frameon=False,
    )
    axes.set_title(title(lab, now), fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return path
