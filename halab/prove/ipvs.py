"""Reading a director's IPVS table from `ipvsadm -Ln` (and `--stats`) output.

The acceptance checks and the failover scenarios both ask "which real servers does the
director forward a VIP to, how, with what weight": one parser answers both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")


@dataclass(frozen=True)
class Destination:
    address: str
    port: int
    method: str  # Route (DR), Masq (NAT), Tunnel (TUN)
    weight: int
    active: int = 0  # ActiveConn: established connections now
    inactive: int = 0  # InActConn: the others IPVS still tracks (FIN_WAIT, TIME_WAIT...)


@dataclass
class Service:
    protocol: str
    vip: str
    port: int
    scheduler: str
    destinations: list[Destination] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    # With --stats: "address:port" -> that destination's counters since the table was made.
    destination_stats: dict[str, dict[str, int]] = field(default_factory=dict)


def parse(table: str) -> dict[tuple[str, str, int], Service]:
    """`ipvsadm -Ln` → {(protocol, vip, port): Service}.

    With `--stats` the service and destination lines carry Conns InPkts OutPkts InBytes
    OutBytes instead of a scheduler and a weight; those land in Service.stats and
    Service.destination_stats (scheduler then reads "", destinations stay empty).
    """
    services: dict[tuple[str, str, int], Service] = {}
    current: Service | None = None
    for line in table.splitlines():
        fields = line.split()
        if fields and fields[0] in ("TCP", "UDP", "SCTP"):
            vip, port = fields[1].rsplit(":", 1)
            rest = fields[2:]
            stats = _counters(rest)
            current = Service(fields[0], vip, int(port), "" if stats else (rest[0] if rest else ""), stats=stats)
            services[(current.protocol, vip, int(port))] = current
        elif fields[:1] == ["->"] and current is not None and ":" in fields[1]:
            address, port = fields[1].rsplit(":", 1)
            if fields[2:3] and fields[2] in ("Route", "Masq", "Tunnel", "Local"):
                conns = [int(f) for f in fields[4:6]] + [0, 0]  # ActiveConn InActConn, when shown
                current.destinations.append(Destination(address, int(port), fields[2], int(fields[3]), *conns[:2]))
            elif _counters(fields[2:]):
                current.destination_stats[fields[1]] = _counters(fields[2:])
    return services


def _counters(fields: list[str]) -> dict[str, int]:
    """The --stats counters of a line, by name; {} when the fields are not counters."""
    if not fields or not all(_is_count(f) for f in fields):
        return {}
    return dict(zip(STATS, (_count(f) for f in fields), strict=False))


def _is_count(text: str) -> bool:
    return text[:-1].isdigit() if text[-1:] in "KMGT" else text.isdigit()


def _count(text: str) -> int:
    """ipvsadm abbreviates large counters: 12K, 3M."""
    scale = {"K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
    return int(text[:-1]) * scale[text[-1]] if text[-1] in scale else int(text)
