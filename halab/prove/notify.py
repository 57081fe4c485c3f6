"""The notify stream: every VRRP state change the directors' keepalived announced, with its
time, held against the VIP moves the client saw.

Each director's keepalived runs the project's notify script on every state change
(halab/templates/halab-notify.j2), which appends `seconds TYPE NAME STATE PRIORITY` to
NOTIFY_LOG. After a scenario the runner reads the logs (`read`), times made relative to the
probe's start with each director's clock offset; per phase, `compare` says which VIP moves had
no MASTER event of their new holder (a notify script an operator relies on would never have
run), which MASTER events had no move (it would have run for nothing), and how late each
notification came after the client saw the move (negative: before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from halab.render import NOTIFY_LOG, runs_imported_conf

if TYPE_CHECKING:
    from halab.remote import Remote
    from halab.spec import Lab

# The last lines read of each director's log: far more than one scenario writes.
TAIL = 500


def parse(text: str) -> list[dict]:
    """NOTIFY_LOG's lines -> {"at", "type", "name", "state", "priority"}; malformed lines skipped
    (a line cut by a crash mid-write)."""
    events = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            at = float(fields[0])
        except ValueError:
            continue
        priority = fields[4] if len(fields) > 4 else ""
        events.append({"at": at, "type": fields[1], "name": fields[2], "state": fields[3], "priority": priority})
    return events


def recorded(lab: Lab) -> bool:
    """Whether the directors run the project's notify script: not where one runs an imported
    keepalived.conf verbatim (it calls the operator's scripts, if any, never halab's), so
    there no stream is compared (an empty one would call every VIP move MISSING)."""
    return not any(runs_imported_conf(node) for node in lab.role("director").values())


def read(remote: Remote, offsets: dict[str, float], started: float) -> list[dict]:
    """Every director's recorded transitions (directors: the keys of offsets, each its clock
    minus the host's), with "node" and "at" relative to the probe's start (host time started).
    A director that cannot be read adds nothing."""
    events = []
    for node, offset in offsets.items():
        result = remote.run(node, f"tail -n {TAIL} {NOTIFY_LOG} 2>/dev/null; true", timeout=15)
        if result.returncode != 0:
            continue
        events += [{**e, "node": node, "at": round(e["at"] - offset - started, 3)} for e in parse(result.stdout)]
    return sorted(events, key=lambda e: e["at"])


# A VIP move "to" this: the client's ARP entry for it failed (unresolved), no node took it.
UNRESOLVED = "none"


def compare(events: list[dict], moves: list[dict], start: float, end: float) -> dict:
    """One phase's MASTER events against its VIP moves (as verdicts.vip_moves gives them):
    the events, the moves with no MASTER event of their new holder in the phase ("missing"),
    the events of a node no VIP moved to ("extra"), and per matched move the latency (ms) from
    the client seeing the move to the nearest notification."""
    masters = [
        {"node": e["node"], "at": e["at"], "name": e["name"]}
        for e in events
        if e["state"] == "MASTER" and start <= e["at"] < end
    ]
    missing, latency = [], []
    moves = [move for move in moves if move["to"] != UNRESOLVED]  # nobody took the VIP
    for move in moves:
        mine = [m for m in masters if m["node"] == move["to"]]
        if not mine:
            missing.append({"vip": move["vip"], "at": move["at"], "to": move["to"]})
            continue
        nearest = min(mine, key=lambda m: abs(m["at"] - move["at"]))
        latency.append({"vip": move["vip"], "to": move["to"], "ms": round((nearest["at"] - move["at"]) * 1000)})
    movers = {move["to"] for move in moves}
    extra = [m for m in masters if m["node"] not in movers]
    # The other changes (BACKUP, FAULT): when a second MASTER stepped down, say.
    others = [{"node": e["node"], "at": e["at"], "state": e["state"]} for e in events if e["state"] != "MASTER"]
    others = [e for e in others if start <= e["at"] < end]
    return {"masters": masters, "missing": missing, "extra": extra, "latency": latency, "others": others}


def summary(notify: dict, start: float) -> str:
    """One phase's comparison in words, for the text under the table; "" without events or moves."""
    if not notify or not (notify["masters"] or notify["missing"] or notify.get("others")):
        return ""
    parts = [
        "MASTER events: "
        + (", ".join(f"{m['node']} at +{(m['at'] - start) * 1000:.0f} ms" for m in notify["masters"]) or "none")
    ]
    parts += [f"{e['node']} {e['state']} at +{(e['at'] - start) * 1000:.0f} ms" for e in notify.get("others", [])]
    parts += [f"notify {item['ms']:+d} ms after the client saw {item['to']} take the VIP" for item in notify["latency"]]
    parts += [f"MISSING: no MASTER event of {item['to']}, which took {item['vip']}" for item in notify["missing"]]
    parts += [f"EXTRA: {item['node']} entered MASTER, no VIP moved to it" for item in notify["extra"]]
    return "; ".join(parts)
