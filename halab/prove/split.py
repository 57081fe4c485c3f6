"""Split brain as the directors lived it: pure functions over what their agents recorded.

Each director's agent (`agent vrrp`) prints when it gained or lost each VIP (sampled 20
times a second) and every VRRP advert its lab interface sent or heard; the client's probe
records, per request, the MAC its ARP entry named. From those, per VIP (and its VRID):

- who held it when (`segments`), and for how long two directors held it at once
  (dual MASTER), and when that began (detection);
- how many times a director took it: seen holding it (`takeovers`), and as its adverts
  tell it (`heard_takeovers`: also those over between two samples);
- from an instant (a heal), how long until exactly one director holds it for good;
- from an instant, how long until the client's requests go to that holder's MAC for good
  (ARP convergence);
- the adverts each director sent and heard, per VRID and source.

Nothing here touches a lab, so each figure is tested on synthetic timelines
(tests/unit/test_split.py), and the phase verdicts built on them too.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

# One sample of the agent's: a gap this short between two directors' records is the
# sampling, not a real overlap (20 samples a second, each director on its own clock).
SAMPLE = 0.05


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    holders: frozenset[str]


@dataclass(frozen=True)
class Lived:
    """What the directors' agents recorded, relative to the probe's start (host clock)."""

    presence: list[dict] = field(default_factory=list)  # {"node", "vip", "present", "at"}
    adverts: list[dict] = field(default_factory=list)  # {"node", "src", "vrid", "prio", "sent", "at"}
    vrids: dict[str, int] = field(default_factory=dict)  # VIP -> its VRRP instance's VRID


def segments(presence: list[dict], vip: str, start: float, end: float) -> list[Segment]:
    """[start, end) cut where any director gained or lost vip, each piece with its holders.
    A director's state before its first record in the window is its last one before it."""
    changes = sorted((r for r in presence if r["vip"] == vip), key=lambda r: r["at"])
    state: dict[str, bool] = {}
    for record in changes:
        if record["at"] <= start:
            state[record["node"]] = record["present"]
    cuts = [start, *(r["at"] for r in changes if start < r["at"] < end), end]
    pieces, pending = [], [r for r in changes if start < r["at"] < end]
    for left, right in itertools.pairwise(cuts):
        while pending and pending[0]["at"] <= left:
            state[pending[0]["node"]] = pending[0]["present"]
            pending.pop(0)
        if right > left:
            pieces.append(Segment(left, right, frozenset(n for n, held in state.items() if held)))
    return pieces


def dual(pieces: list[Segment]) -> float:
    """Seconds two or more directors held the VIP at once, overlaps of a sample or less not counted."""
    return sum(p.end - p.start for p in pieces if len(p.holders) > 1 and p.end - p.start > SAMPLE)


def first_dual(pieces: list[Segment]) -> float | None:
    """When two directors first held the VIP at once (longer than a sample), None if never."""
    return next((p.start for p in pieces if len(p.holders) > 1 and p.end - p.start > SAMPLE), None)


def single_from(pieces: list[Segment], since: float) -> float | None:
    """Seconds from since until exactly one director holds the VIP and keeps holding it alone
    to the window's end; None if that never happens."""
    settled = None
    for piece in pieces:
        if piece.end <= since:
            continue
        alone = len(piece.holders) == 1
        settled = (max(piece.start, since) if settled is None else settled) if alone else None
    return None if settled is None else settled - since


def holder_at(pieces: list[Segment], at: float) -> str:
    """The one director holding the VIP at `at`, "" if none or several."""
    piece = next((p for p in pieces if p.start <= at < p.end), None)
    return next(iter(piece.holders)) if piece is not None and len(piece.holders) == 1 else ""


def takeovers(presence: list[dict], vip: str, start: float, end: float) -> int:
    """How many times a director gained vip within (start, end)."""
    return sum(1 for r in presence if r["vip"] == vip and r["present"] and start < r["at"] < end)


def heard_takeovers(records: list[dict], vrid: int, start: float, end: float) -> int:
    """Takeovers under advert loss as the adverts tell them, within [start, end): each run of
    adverts from a director of lower priority than another heard for vrid (only where one
    MASTER is expected: in a split, two MASTERs' adverts interleave and each would count). A lower-priority director
    advertises only while MASTER, and keepalived's MASTER answers its first advert with its
    own at once (lower_prio_no_advert is off by default), so a takeover can end within
    milliseconds, between two presence samples (`takeovers` misses it); its advert was on
    the wire all the same. Adverts heard by every listener, merged in time (each advert
    heard by several is one run still)."""
    heard = sorted((r for r in records if r["vrid"] == vrid and not r["sent"] and start <= r["at"] < end), key=_at)
    top = max((r["prio"] for r in heard), default=0)
    runs, low = 0, False
    for record in heard:
        runs += record["prio"] < top and not low
        low = record["prio"] < top
    return runs


def _at(record: dict) -> float:
    return record["at"]


def arp_from(
    requests: list[dict], macs: dict[str, str], pieces: list[Segment], target: str, since: float
) -> float | None:
    """Seconds from since until every request to target goes to the MAC of the director
    holding its VIP alone at that moment, to the window's end; None if never (or no request)."""
    mine = sorted((r for r in requests if r["target"] == target and r["sent"] >= since), key=lambda r: r["sent"])
    if not mine or not pieces or mine[0]["sent"] >= pieces[-1].end:
        return None
    converged = None
    for record in (r for r in mine if r["sent"] < pieces[-1].end):
        right = macs.get(record["mac"], "") == holder_at(pieces, record["sent"]) != ""
        converged = (record["sent"] if converged is None else converged) if right else None
    return None if converged is None else converged - since


def adverts(records: list[dict], vrid: int, start: float, end: float) -> dict[str, dict[str, int]]:
    """The adverts of one VRID within [start, end) that reached each director's NIC: "heard by
    NODE" source -> count (what a director sends itself is left out: user-mode Linux's NIC
    shows no outgoing packets to a packet socket, so it would be counted on some providers only)."""
    mine = [r for r in records if r["vrid"] == vrid and start <= r["at"] < end]
    seen: dict[str, dict[str, int]] = {}
    for node in sorted({r["node"] for r in mine}):
        seen[f"heard by {node}"] = dict(Counter(r["src"] for r in mine if r["node"] == node and not r["sent"]))
    return seen


def figures(
    lived: Lived, requests: list[dict], macs: dict[str, str], start: float, end: float, lossy: bool = False
) -> dict[str, dict]:
    """Per VIP, everything above over [start, end): the phase's split-brain figures, in ms.
    "single_ms" and "arp_ms" count from start (the action); null when it never happened.
    {} when the directors recorded nothing (their watchers failed): nothing was measured."""
    result: dict[str, dict] = {}
    if not lived.presence:
        return result
    for vip, vrid in lived.vrids.items():
        pieces = segments(lived.presence, vip, start, end)
        target = next((r["target"] for r in requests if r["target"].rsplit(":", 1)[0] == vip), vip)
        began, single = first_dual(pieces), single_from(pieces, start)
        arp = arp_from(requests, macs, pieces, target, start)
        result[vip] = {
            "vrid": vrid,
            "dual_ms": round(dual(pieces) * 1000),
            "dual_after_ms": None if began is None else round((began - start) * 1000),
            "takeovers": takeovers(lived.presence, vip, start, end),
            "single_ms": None if single is None else round(single * 1000),
            "arp_ms": None if arp is None else round(arp * 1000),
            "adverts": adverts(lived.adverts, vrid, start, end),
        }
        if lossy:  # under advert loss alone: in a split two MASTERs' adverts interleave
            result[vip]["heard_takeovers"] = heard_takeovers(lived.adverts, vrid, start, end)
    return result


def adverts_in_down(advert_int: float, down: float) -> int:
    """k: how many adverts in a row must be lost for a takeover. After one that arrived, the
    BACKUP takes over once `down` (its master-down timer) passes with no other, and the next
    ones are due every advert_int: losing floor(down / advert_int) of them is enough."""
    return max(1, int(down // advert_int))


def predicted_per_minute(loss: float, advert_int: float, down: float) -> float:
    """Spurious takeovers a minute under independent loss (a share, 0..1) of the MASTER's
    adverts: each arriving advert starts a run, and a run of k losses is a takeover, so the
    rate is 60 / advert_int x (1 - loss) x loss^k (the takeover ends at the MASTER's next
    advert that arrives: higher priority wins)."""
    k = adverts_in_down(advert_int, down)
    return 60 / advert_int * (1 - loss) * loss**k
