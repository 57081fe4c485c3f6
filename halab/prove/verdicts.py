"""Verdicts: pure functions from what a scenario observed to each phase's result.

Nothing here touches a lab: the runner hands over the probe's records (times relative to
the probe's start), the held connections, the nodes' MACs and, per phase, when its action
ran and what was found afterwards. So every rule can be tested on a synthetic timeline.

A phase passes when the longest gap between successful responses is within its bound +
margin, no request failed after its failure window, the VIPs and IPVS members are where
the protocol says, and the held connections did what the lab's settings promise: without
`lvs_sync_daemon` the new MASTER's IPVS has no entry for them and its own TCP stack answers
with RST, so some must be lost; with it none may be lost and none may stall longer than
twice the bound plus TCP's minimum retransmission timeout.

Before any of that, a phase must have been exercised: its fault must have met the probe's
traffic. A real server's fault is met only if that server answered the probe before it (with
persistence the client is pinned to one server, and a fault on the other changes nothing it
sees); a director's only if the client's requests reached that director just before it. A
phase that was not is "not exercised", and so is the heal of a fault that never was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from halab.prove import established, notify, split
from halab.prove.results import Margin, PhaseResult
from halab.prove.scenarios import Phase

# Phases that must cost nothing at all: no VRRP transition, no failed request.
QUIET = ("idle", "reload")
# Phases that must see no VRRP transition: those, and a campaign's gaps between faults (where
# a blip within the margin is noise, as in any phase).
STEADY = (*QUIET, "quiet")


@dataclass(frozen=True)
class Seen:
    """What one scenario's run observed, relative to the probe's start: the requests and held
    connections, the nodes' MACs, and a NAT gateway's ARP entry changing owner."""

    requests: list[dict]
    connections: list[dict] = field(default_factory=list)
    macs: dict[str, str] = field(default_factory=dict)
    gateway: list[dict] = field(default_factory=list)
    notify: list[dict] | None = field(default_factory=list)  # the directors' state changes; None: not recorded
    lived: split.Lived = field(default_factory=split.Lived)  # the directors' own records


@dataclass(frozen=True)
class Mark:
    """One phase as it ran, relative to the probe's start: its action from `acted` to `done`,
    its records judged until `until`, what the lab's state contradicted afterwards, and the
    VRRP transitions counted across it (when the phase observes them)."""

    phase: Phase
    acted: float
    done: float
    until: float
    problems: list[str] = field(default_factory=list)
    transitions: int | None = None


def judge_all(
    scenario: str, marks: list[Mark], seen: Seen, margin: Margin, resolution: float = 0.0, accept: bool = False
) -> list[PhaseResult]:
    """Every phase of a scenario, each judged alone, then whether the traffic met its fault:
    a heal inherits its fault's answer (healing a fault nobody met proves nothing either).
    accept: a phase not exercised does not fail the run (it is still reported)."""
    results, missed = [], ""
    for mark in marks:
        result = judge(scenario, mark, seen, margin, resolution)
        missed = missed if mark.phase.heals else unexercised(mark, seen)
        result.unexercised, result.accept_unexercised = missed, accept
        results.append(result)
    return results


def server_of(page: str) -> str:
    """The real server a page names (every node serves `<h1>NAME's page</h1>`), "" for another page."""
    text = page.strip().removeprefix("<h1>").removesuffix("</h1>")
    return text.removesuffix("'s page") if text.endswith("'s page") else ""


def unexercised(mark: Mark, seen: Seen) -> str:
    """Why the probe's traffic never met the phase's fault; "" when it did (or there is nothing
    to meet). Judged on the requests sent before the action, as the client saw them."""
    node, before = mark.phase.fault.node, [r for r in seen.requests if r["sent"] < mark.acted]
    if mark.phase.exercises == "server":
        served = [server_of(r.get("page", "")) for r in before if r["ok"]]
        if node in served:
            return ""
        others = sorted({name for name in served if name}) or ["no server"]
        return (
            f"{node} answered none of the probe's {len(before)} requests before the fault "
            f"({' and '.join(others)} answered them all{': persistence pins the client' if len(others) == 1 else ''})"
        )
    if mark.phase.exercises == "vip":
        last = {r["target"]: seen.macs.get(r["mac"], "") for r in sorted(before, key=lambda r: r["sent"]) if r["ok"]}
        if node in last.values():
            return ""
        holders = " and ".join(sorted({owner or "an unknown MAC" for owner in last.values()})) or "nobody"
        return f"the client's requests reached {holders} just before the fault, not {node}"
    return ""


def judge(scenario: str, mark: Mark, seen: Seen, margin: Margin, resolution: float = 0.0) -> PhaseResult:
    """One phase's result, whole.

    The failure window opens when the action starts and closes `bound + margin` after it
    returned (a restart returns once the node has booted) or after a node last took a VIP
    over within the phase, whichever is later: a MASTER that preempts seconds after its
    keepalived started resets the requests in flight on the BACKUP at that moment (found by
    CI on VMs: one reset at +4.09 s, the VIP back at +4.15 s, the window closed at +3.2 s).
    """
    phase, requests = mark.phase, seen.requests
    slack = margin.of(phase.bound)
    last_move = max([mark.done, *takeovers(requests, mark.acted, mark.until, seen.macs)])
    window_end = last_move + phase.bound + slack
    mine = [r for r in requests if mark.acted <= _charged(r) < mark.until]
    failures = [r for r in mine if not r["ok"]]
    outside = [r for r in failures if r["sent"] > window_end]
    if phase.lasting:  # a fault the check cannot see fails requests until its heal: none is outside
        window_end, outside = mark.until, []
    result = PhaseResult(
        scenario=scenario,
        phase=phase.name,
        bound_ms=round(phase.bound * 1000),
        basis=phase.basis,
        margin_ms=round(slack * 1000),
        outage_ms=round(outage(requests, mark.acted, mark.until) * 1000),
        failed=len(failures),
        failed_outside=len(outside),
        failing_ms=round((max(r["done"] for r in failures) - mark.acted) * 1000) if failures else 0,
        first_outside=_first(outside, mark.acted),
        vip_moves=vip_moves(requests, mark.acted, mark.until, seen.macs),
        problems=mark.problems + _phase_problems(mark, requests, len(failures), seen.macs),
        start=mark.acted,
        window_end=window_end,
        end=mark.until,
        kind=phase.kind,
        resolution_ms=round(resolution * 1000),
        transitions=mark.transitions,
        gateway_moves=owner_changes(seen.gateway, mark.acted, mark.until, seen.macs),
    )
    _judge_connections(result, phase, seen.connections, margin)
    if seen.notify is not None:
        result.notify = notify.compare(seen.notify, result.vip_moves, mark.acted, mark.until)
    if "split" in phase.observe:
        _judge_split(result, mark, seen, margin)
    return result


def _charged(request: dict) -> float:
    """When a request counts: when it was sent, or for a failure, when it ended. A request
    still in flight when the next action began failed of that action, not of the phase it
    was sent in (a campaign saw a crash's in-flight timeouts charged to the quiet gap before)."""
    return request["sent"] if request["ok"] else request["done"]


def _judge_split(result: PhaseResult, mark: Mark, seen: Seen, margin: Margin) -> None:
    """Add the phase's split-brain figures and what contradicts its expectation. Bounds count
    from the action's end (a partition is applied on two nodes, one after the other)."""
    phase = mark.phase
    lossy = phase.fault.primitive == "advert-loss" and not phase.heals
    until = mark.done if lossy else mark.until  # under loss: its takeovers, while it lasted
    result.split = split.figures(seen.lived, seen.requests, seen.macs, mark.acted, until, lossy)
    result.split_expected, result.split_bound_ms = phase.split, round(phase.split_bound * 1000)
    if lossy:
        result.loss, result.loss_seconds = phase.fault.amount, round(mark.done - mark.acted, 1)
    judged = {vip: seen for vip, seen in result.split.items() if phase.split != "splits" or vip in phase.splitting}
    result.problems += split_problems(phase.split, phase.split_bound, judged, mark.done - mark.acted, margin)


def split_problems(expected: str, bound: float, figures: dict[str, dict], acting: float, margin: Margin) -> list[str]:
    """What a phase's split-brain figures (split.figures, per VIP) contradict: `expected` is a
    resolved scenarios.SPLITS value, bound its seconds, acting how long the action itself took."""
    if not expected:
        return []
    if not figures:
        return ["no VIP presence recorded on the directors: split brain not measured"]
    limit = acting + bound + margin.of(bound)
    problems = []
    for vip, seen in figures.items():
        began, dual, single = seen["dual_after_ms"], seen["dual_ms"], seen["single_ms"]
        if expected == "splits" and began is None:
            problems.append(f"{vip}: never two MASTERs, expected both within {bound * 1000:.0f} ms")
        elif expected == "splits" and began > limit * 1000:
            problems.append(f"{vip}: two MASTERs only after {began} ms, bound {bound * 1000:.0f} ms + margin")
        if expected == "holds" and dual:
            problems.append(f"{vip}: two MASTERs for {dual} ms, expected none")
        if expected == "rejoins" and (single is None or single > limit * 1000):
            took = "never" if single is None else f"after {single} ms"
            problems.append(f"{vip}: one MASTER again {took}, bound one advert {bound * 1000:.0f} ms + margin")
    return problems


def _first(outside: list[dict], acted: float) -> str:
    """The first failure after the window: when, to which VIP, what error."""
    if not outside:
        return ""
    first = outside[0]
    return f"+{first['sent'] - acted:.2f} s to {first['target']}: {first.get('error', '')}"


def flapped(mark: Mark, requests: list[dict], macs: dict[str, str]) -> list[str]:
    """A flapping link: each flap moves a VIP at most twice (a takeover, then the return; the
    higher priority wins back whatever nopreempt says), as the client sees it."""
    allowed = 2 * round(mark.phase.fault.amount)
    moves = vip_moves(requests, mark.acted, mark.until, macs)
    return (
        [f"the VIP moved {len(moves)} times in {allowed // 2} flaps, at most {allowed}"] if len(moves) > allowed else []
    )


def _phase_problems(mark: Mark, requests: list[dict], failed: int, macs: dict[str, str]) -> list[str]:
    """What the phase's own expectations contradict: persistence, and an idle phase's quiet."""
    problems = stuck(requests, mark.acted, mark.until) if mark.phase.sticky else []
    if mark.phase.kind == "flaps":
        problems += flapped(mark, requests, macs)
    kind = mark.phase.kind
    where = "while idle" if kind in ("idle", "quiet") else f"during '{mark.phase.name}'"
    if kind in STEADY and mark.transitions:
        problems.append(f"{mark.transitions} VRRP state transitions {where}, expected 0")
    if kind in QUIET and failed:
        problems.append(f"{failed} requests failed {where}, expected 0")
    if mark.phase.lasting and not failed:
        problems.append("no request failed, yet the check cannot see this fault: expected failures until the heal")
    return problems


def _judge_connections(result: PhaseResult, phase: Phase, connections: list[dict], margin: Margin) -> None:
    """Add the held connections' figures, and what contradicts the phase's expectation, to result."""
    bound = established.stall_bound(phase.bound)
    limit = bound + margin.of(bound)
    held = established.judge(connections, result.start, result.end, limit)
    result.held, result.survived = held.total, held.survived
    result.longest_stall_ms = round(held.longest_stall * 1000)
    result.stall_bound_ms = round(bound * 1000)
    result.established = phase.established
    result.problems += established.problems(held, phase.established, limit)


def relative(connection: dict, origin: float) -> dict:
    """A held connection's record with its times made relative to origin (the probe's start
    on the host clock, plus the client's clock offset)."""
    moved = {key: connection[key] - origin for key in ("opened", "last_ok", "ended")}
    return {**connection, **moved, "stalls": [[a - origin, b - origin] for a, b in connection["stalls"]]}


def stuck(requests: list[dict], start: float, end: float) -> list[str]:
    """With persistence: the real servers that answered each VIP from the last answer before
    the phase to its end, as a problem when there were several."""
    problems = []
    for target in sorted({r["target"] for r in requests}):
        answered = sorted((r for r in requests if r["target"] == target and r["ok"]), key=lambda r: r["sent"])
        before = [r for r in answered if r["sent"] < start][-1:]
        pages = dict.fromkeys(r.get("page", "") for r in before + [r for r in answered if start <= r["sent"] < end])
        if len(pages) > 1:
            problems.append(f"{target} answered by {' and '.join(pages)} despite persistence_timeout: expected one")
    return problems


def outage(requests: list[dict], start: float, end: float) -> float:
    """The longest time, per VIP, between two successful responses (the probe's first and
    last requests count as the ends), over gaps that reach into [start, end), up to `end`:
    what a user polling the VIP saw as the service being down. A gap that runs on past the
    phase's end is the next action's too, and only its part before `end` is this phase's (a
    campaign's link cut was charged the 50 s of stale ARP that its heal caused)."""
    longest = 0.0
    for target in {r["target"] for r in requests}:
        mine = [r for r in requests if r["target"] == target]
        # From the first request to the last: a VIP that stopped answering before the probe
        # ended, or never answered, shows as an outage up to the probe's end (or from its start).
        times = sorted(
            [min(r["sent"] for r in mine), max(r["done"] for r in mine)] + [r["done"] for r in mine if r["ok"]]
        )
        for before, after in itertools.pairwise(times):
            if after > start and before < end:
                longest = max(longest, min(after, end) - before)
    return longest


def vip_moves(requests: list[dict], start: float, end: float, macs: dict[str, str]) -> list[dict]:
    """When the client's ARP entry for each VIP changed owner, as the client saw it."""
    return _owner_moves(requests, start, end, lambda mac: macs.get(mac, mac or notify.UNRESOLVED))


def takeovers(requests: list[dict], start: float, end: float, macs: dict[str, str]) -> list[float]:
    """When a node of the lab took a VIP over from another, as the client saw it; requests
    that reached no known node are passed over, so an outage alone is never a takeover."""
    return [move["at"] for move in _owner_moves(requests, start, end, macs.get)]


def _owner_moves(requests: list[dict], start: float, end: float, owner_of: Callable[[str], str | None]) -> list[dict]:
    """Each change of a VIP's owner within [start, end); records whose owner is None are skipped."""
    moves = []
    for target in sorted({r["target"] for r in requests}):
        previous = None
        for record in sorted((r for r in requests if r["target"] == target), key=lambda r: r["sent"]):
            owner = owner_of(record["mac"])
            if owner is None:
                continue
            if previous is not None and owner != previous and start <= record["sent"] < end:
                moves.append({"vip": target, "at": round(record["sent"], 3), "from": previous, "to": owner})
            previous = owner
    return moves


def owner_changes(changes: list[dict], start: float, end: float, macs: dict[str, str]) -> list[dict]:
    """The changes of a watched ARP entry (the NAT gateway's) within [start, end), each named
    by the node whose MAC it now holds ("none" while unresolved)."""
    return [
        {"at": round(change["at"], 3), "to": macs.get(change["mac"], change["mac"] or "none")}
        for change in changes
        if start <= change["at"] < end
    ]
