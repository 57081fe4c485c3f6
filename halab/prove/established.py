"""Established connections across a phase: which of the probe's held keep-alive
connections kept flowing, which stalled and for how long, which were lost.

The agent (halab.prove.agent, `http --hold`) writes one record per connection once it
ends: when it opened, its stalls (waits for a reply longer than 0.3 s, as [from, to]),
its last reply and how it ended. A stall belongs to the phase in which it began: a
connection frozen by a director crash and reset only after the crash's phase was
observed is still lost to the crash.

A connection that stalls does not reconnect: TCP retransmits with exponential backoff,
so after the VIP moves, the first retransmission that reaches the new MASTER comes up to
as long again as the outage lasted. The stall bound is therefore twice the phase's bound
plus TCP's minimum retransmission timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Linux's minimum TCP retransmission timeout (TCP_RTO_MIN).
RTO_MIN = 0.2
# A stall starts at the last reply before it: up to one request interval and a round trip
# before the action that caused it.
LEAD = 0.5
# The agent's own threshold: waits shorter than this are not recorded as stalls.
STALL = 0.3
ENDED = {
    "reset": "reset",
    "closed": "closed by the server",
    "stalled": "given up stalled",
    "error": "failed",
}

# What a phase expects of the connections established when it began.
KEPT = "kept"  # none lost: with lvs_sync_daemon the new MASTER forwards them
LOST = "lost"  # some lost: without it the new MASTER has no entry and answers with RST


def stall_bound(bound: float) -> float:
    """The longest a held connection may stall in a phase whose outage bound is `bound`."""
    return 2 * bound + RTO_MIN


@dataclass
class Held:
    """The held connections of one phase."""

    total: int = 0  # established when the phase began
    survived: int = 0
    longest_stall: float = 0.0  # seconds
    ends: dict[str, int] = field(default_factory=dict)  # how the lost ones ended -> count


def stalls(connection: dict) -> list[tuple[float, float]]:
    """Every stall of one connection, the wait that ended it included (until its reset,
    its close, or the probe's end if it was still waiting then)."""
    found = [(start, end) for start, end in connection.get("stalls", [])]
    if connection["ended"] - connection["last_ok"] > STALL:
        found.append((connection["last_ok"], connection["ended"]))
    return found


def judge(connections: list[dict], start: float, end: float, limit: float) -> Held:
    """The connections established before `start` that were alive then, and what the phase
    [start, end) did to them: a connection is lost when it ended (not by the probe's own
    end) or stalled longer than `limit` seconds, in a stall that began in the phase."""
    held = Held()
    for connection in connections:
        if connection["opened"] >= start or _lost_before(connection, start):
            continue
        held.total += 1
        mine = [(a, b) for a, b in stalls(connection) if start - LEAD <= a < end - LEAD]
        longest = max((b - a for a, b in mine), default=0.0)
        held.longest_stall = max(held.longest_stall, longest)
        ended_here = connection["outcome"] != "open" and start - LEAD <= connection["last_ok"] < end - LEAD
        if ended_here:
            how = ENDED.get(connection["outcome"], connection["outcome"])
            held.ends[how] = held.ends.get(how, 0) + 1
        elif longest > limit:
            held.ends["stalled too long"] = held.ends.get("stalled too long", 0) + 1
        else:
            held.survived += 1
    return held


def _lost_before(connection: dict, start: float) -> bool:
    """Whether the connection had ended (its last reply came) before the phase began."""
    return connection["outcome"] != "open" and connection["last_ok"] < start - LEAD


def problems(held: Held, expected: str, limit: float) -> list[str]:
    """What contradicts the phase's expectation for its established connections."""
    if not expected:
        return []
    if not held.total:
        return ["no held connection was established when the phase began: nothing to judge"]
    lost = held.total - held.survived
    if expected == LOST and not lost:
        return [
            f"all {held.total} established connections survived, expected them lost "
            "(without lvs_sync_daemon the new MASTER has no IPVS entry for them)"
        ]
    if expected == KEPT and lost:
        how = ", ".join(f"{count} {what}" for what, count in sorted(held.ends.items()))
        return [f"{lost} of {held.total} established connections lost ({how}); stall bound {limit * 1000:.0f} ms"]
    return []
