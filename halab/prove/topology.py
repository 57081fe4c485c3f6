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

import textwrap
from dataclasses import dataclass, replace
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
# A picture (PNG, SVG, DOT) stays readable, and quick to draw, however large a valid lab
# file is: a 256 KiB file with 61 real servers in 229 services took 49 to 109 s to draw
# and 1.6 MB of DOT when every box listed every service. Beyond these, a box or label
# counts what it leaves out (the text rendering lists everything).
DRAWN_SERVERS = 8  # real servers with a box of their own; the rest share one that counts them
BOX_LINES = 6  # per-service lines in a box
VIP_LABELS = 4  # VIPs named under the director holding them
# The DOT ids of the lab switch and the NAT network's: a node name has no underscore, and
# rules reserve `switch`.
SWITCH, NAT_SWITCH = "switch", "nat_switch"
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


def node_lines(lab: Lab, name: str, now: Live | None, members: bool = True, limit: int | None = None) -> list[str]:
    """What a node's box says: name, role and address (and a director's on the NAT network);
    a director's state and priority per VRRP instance; a real server's services (at most
    `limit`, then how many more); and, from a running lab, what it is doing now (with
    members: a real server's IPVS entries, which the text lists under each VIP instead)."""
    node = lab.nodes[name]
    lines = [name, f"{node.role} {node.address}"]
    if node.role == "director":
        if lab.nat is not None and name in lab.nat.directors:
            lines.append(f"NAT network {lab.nat.directors[name]}")
        lines += [f"VRID {i.vrid}: {i.state} priority {i.priority}" for i in render.instances(lab, name)]
    if node.role == "realserver":
        lines += _at_most(
            [
                f"{service.vip}:{service.port} weight {service.real_servers[name].weight}"
                for service in lab.virtual_services
                if name in service.real_servers
            ],
            limit,
            "services",
        )
    if now:
        row = now.nodes.get(name)
        state = "down" if row is None or not row.up else "up"
        if row is not None and row.up and node.role == "director":
            state += f", {row.vrrp}" + (f", holds {' '.join(row.vips)}" if row.vips else "")
        lines.append(f"now: {state}")
        entries = members_of(name, now) if members else []
        for member in entries[:limit]:
            lines += [
                f"now: in IPVS, weight {member.weight}",
                f"{member.active} active, {member.inactive} inactive, {member.conns} total connections",
            ]
        if limit is not None and len(entries) > limit:
            lines.append(f"... and {len(entries) - limit} more IPVS entries")
    return lines


def _at_most(items: list[str], limit: int | None, what: str) -> list[str]:
    """The first `limit` items, then a line counting the rest (all of them when limit is None)."""
    if limit is None or len(items) <= limit:
        return items
    return [*items[:limit], f"... and {len(items) - limit} more {what}"]


def members_of(server: str, now: Live) -> list[Member]:
    """A real server's entries in the IPVS tables now (one per service that has it)."""
    return [m for entries in now.members.values() for m in entries or () if m.node == server]


def member_text(member: Member) -> str:
    return (
        f"in IPVS, weight {member.weight}, {member.active} active / {member.inactive} inactive, "
        f"{member.conns} connections"
    )


def flows(lab: Lab, now: Live | None) -> list[Flow]:
    """Every hop a request to a VIP takes, and its reply, for each virtual service. A lab
    without a client (valid: only what sends requests needs one) has no hop to or from it."""
    held = holders(lab, now)
    hops = []
    client = client_of(lab)
    for service in lab.virtual_services:
        director = held[str(service.vip)]
        if client:
            hops.append(Flow(client, director, "request", f"to VIP {service.vip}:{service.port}/{service.protocol}"))
        for server in service.real_servers:
            hops.append(Flow(director, server, "forward", f"{service.lb_algo}/{service.lb_kind}"))
            back = (server, client) if service.lb_kind != "NAT" else (server, director)
            if back[1]:
                hops.append(Flow(*back, "reply", f"reply from {service.vip}"))
    return list(dict.fromkeys(hops))


def merged(hops: list[Flow]) -> list[Flow]:
    """One flow per source, target and kind, its label naming at most VIP_LABELS of the
    labels merged into it: a picture draws one arrow where many VIPs take the same hop."""
    labels: dict[tuple[str, str, str], list[str]] = {}
    for hop in hops:
        labels.setdefault((hop.source, hop.target, hop.kind), []).append(hop.label)
    return [
        Flow(*key, "; ".join(_at_most(list(dict.fromkeys(texts)), VIP_LABELS, "VIPs"))) for key, texts in labels.items()
    ]


def client_of(lab: Lab) -> str:
    """The client the pictures draw requests from ("" when the lab file has none, which
    `Lab.client` refuses, as what sends requests needs one; a picture does not)."""
    return next(iter(lab.role("client")), "")


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


def nat_text(lab: Lab) -> str:
    """The NAT network behind the directors and its gateway ("" without one)."""
    if lab.nat is None:
        return ""
    return (
        f"NAT network {lab.nat.subnet} on the directors' {lab.nat.interface}: the real servers' "
        f"gateway {lab.nat.gateway}, held by VRRP with the VIPs"
    )


# --- renderings ----------------------------------------------------------------------------


def text(lab: Lab, now: Live | None) -> str:
    """The topology as lines for a terminal."""
    lines = [title(lab, now), f"  {switch_text(lab)}"]
    lines += [f"  {nat_text(lab)}"] if lab.nat else []
    lines.append("nodes:")
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
    client = client_of(lab) or "a client (none in the lab file)"
    for service in lab.virtual_services:
        lines.append(
            f"  request: {client} -> VIP {service.vip} on {held[str(service.vip)]} -> "
            f"{' | '.join(service.real_servers)} ({service.lb_algo}, {FORWARDS[service.lb_kind]})"
        )
        lines.append(f"  reply:   {' | '.join(service.real_servers)} -> {client}: {REPLIES[service.lb_kind]}")
    return "\n".join(lines)


def dot(lab: Lab, now: Live | None) -> str:
    """The topology in graphviz's DOT language: nodes on the lab switch (with NAT, the real
    servers on the NAT network's, which the directors join too), and the flows."""
    lines = [
        f"digraph {_quoted(lab.name)} {{",
        f"  graph [label={_quoted(title(lab, now))}, labelloc=t, fontname=Helvetica];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica];',
        "  edge [fontname=Helvetica, fontsize=10];",
        f'  {SWITCH} [label={_quoted(switch_text(lab))}, shape=hexagon, fillcolor="#e9ecef"];',
    ]
    if lab.nat:
        lines.append(f'  {NAT_SWITCH} [label={_quoted(nat_text(lab))}, shape=hexagon, fillcolor="#e9ecef"];')
    for name, node in lab.nodes.items():
        label = "\n".join(node_lines(lab, name, now, limit=BOX_LINES))
        lines.append(f"  {_quoted(name)} [label={_quoted(label)}, fillcolor={_quoted(COLORS[node.role])}];")
        lines += [f"  {_quoted(name)} -> {switch} [dir=none, color=gray];" for switch in switches(lab, name)]
    for flow in merged(flows(lab, now)):
        lines.append(
            f"  {_quoted(flow.source)} -> {_quoted(flow.target)} [label={_quoted(flow.label)}, "
            f"color={_quoted(FLOW_COLORS[flow.kind])}, constraint=false];"
        )
    return "\n".join([*lines, "}"]) + "\n"


def switches(lab: Lab, name: str) -> list[str]:
    """The switches a node is on: the lab switch; with NAT, the real servers are on the NAT
    network's instead and the directors on both."""
    if lab.nat is None:
        return [SWITCH]
    role = lab.nodes[name].role
    return {"director": [SWITCH, NAT_SWITCH], "realserver": [NAT_SWITCH]}.get(role, [SWITCH])


def _quoted(value: str) -> str:
    """A DOT double-quoted string (newlines as DOT's centred line breaks)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Boxes:
    """What a picture draws: a box per node up to DRAWN_SERVERS real servers, the rest in one
    box that counts them (`others`); `box` maps every node to the box it is drawn in."""

    box: dict[str, str]
    others: list[str]

    @classmethod
    def of(cls, lab: Lab) -> Boxes:
        servers = list(lab.role("realserver"))
        others = servers[DRAWN_SERVERS - 1 :] if len(servers) > DRAWN_SERVERS else []
        key = f"+{len(others)} real servers"
        return cls({name: key if name in others else name for name in lab.nodes}, others)

    def lines(self, lab: Lab, key: str, now: Live | None) -> list[str]:
        """A box's text: the node's own, or the shared box's count and names."""
        if key in lab.nodes:
            return node_lines(lab, key, now, limit=BOX_LINES)
        names = ", ".join(self.others[:3]) + (", ..." if len(self.others) > 3 else "")
        return [f"{len(self.others)} more real servers", names]

    def flows(self, lab: Lab, now: Live | None) -> list[Flow]:
        """The flows between boxes: those of the counted real servers merged into the shared box's."""
        return merged([replace(f, source=self.box[f.source], target=self.box[f.target]) for f in flows(lab, now)])


def draw(lab: Lab, now: Live | None, path: Path) -> Path:
    """The topology as a picture (PNG or SVG, by the path's suffix): the client above the
    switch, directors and real servers below it (with NAT, the real servers below the NAT
    network's switch), each request's hops as arrows. A large lab is summarised (Boxes,
    BOX_LINES, VIP_LABELS), so the picture takes seconds and stays legible."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.lines import Line2D

    boxes = Boxes.of(lab)
    directors = list(lab.role("director"))
    servers = list(dict.fromkeys(boxes.box[name] for name in lab.role("realserver")))
    rows = [directors, servers] if lab.nat else [[*directors, *servers]]
    width = max(*map(len, rows), 2) * 3.2
    low = -4.0 if lab.nat else -0.6  # a NAT network's switch at -1, its real servers at -3
    spot = {name: (width / 2, 5.0) for name in lab.role("client")}
    for y, row in zip((1.0, -3.0), rows, strict=False):
        spot.update({name: ((index + 0.5) * width / len(row), y) for index, name in enumerate(row)})
    figure, axes = pyplot.subplots(figsize=(width + 1, 7.5 + (3.4 if lab.nat else 0)), dpi=100)
    axes.set_xlim(0, width)
    axes.set_ylim(low, 6.2)
    axes.axis("off")
    networks = {SWITCH: (3.0, switch_text(lab))} | ({NAT_SWITCH: (-1.0, nat_text(lab))} if lab.nat else {})
    for y, label in networks.values():
        axes.plot([0.2, width - 0.2], [y, y], color="#6c757d", linewidth=6, solid_capstyle="round")
        wrapped = textwrap.fill(label, int(width * 12))  # about 12 characters an inch at 9 points
        axes.text(width / 2, y + 0.2, wrapped, ha="center", va="bottom", fontsize=9, color="#495057")
    for name, (x, y) in spot.items():
        for switch in switches(lab, name if name in lab.nodes else boxes.others[0]):
            axes.plot([x, x], [y, networks[switch][0]], color="#adb5bd", linewidth=1.5, zorder=1)
        role = lab.nodes[name].role if name in lab.nodes else "realserver"
        axes.text(
            x,
            y,
            "\n".join(boxes.lines(lab, name, now)),
            ha="center",
            va="center",
            fontsize=8,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.5", "facecolor": COLORS[role], "edgecolor": "#495057"},
        )
    ids = vrids(lab)
    for director, vips in _held_by(lab, now).items():
        x, y = spot[director]
        named = _at_most([f"VIP {vip} (VRID {ids[vip]})" for vip in vips], VIP_LABELS, "VIPs")
        axes.text(x, y - 0.55, "\n".join(named), ha="center", va="top", fontsize=8, color="#842029", weight="bold")
    drawn = boxes.flows(lab, now)
    for flow in drawn:
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
    kinds = [flow.kind for flow in drawn]
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


def _held_by(lab: Lab, now: Live | None) -> dict[str, list[str]]:
    """Director -> the VIPs it holds (holders, turned around)."""
    found: dict[str, list[str]] = {}
    for vip, director in holders(lab, now).items():
        found.setdefault(director, []).append(vip)
    return found
