"""The fault campaign: a seeded random schedule of the catalogue's faults, run as one scenario.

Pacemaker's cluster test suite and Jepsen test the same way: pick faults at random from a
catalogue, in a sequence a seed reproduces, and judge what clients saw against invariants.
Here each step is a catalogue entry (fault and heal) on a target the seed picks, followed
by a quiet gap of a length the seed picks; a director's fault may run while a real server is
down (one step in three of those, `scenarios.beside`: the director that returns checks every
real server anew); the whole schedule is one scenario, so the probe
runs without a break from the first fault to the last quiet second, and each phase is
judged as in `test.failover`. The invariants are the phases' verdicts:

- after every fault and every heal the VIPs are served again within the phase's bound;
- the VIPs and the IPVS members end where the phase says (a failed real server out of
  IPVS within its check's bound, a healed one back);
- nothing of a fault remains after its heal (rules, qdiscs, stopped processes);
- established connections are kept where the lab syncs them, lost where it does not;
- every quiet gap between faults sees no VRRP transition and no failed request.

A step whose fault the probe's traffic never met (a real server the client is not pinned
to, with persistence) is NOT EXERCISED: reported and counted, never a pass.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from halab.errors import UsageError
from halab.prove import bounds, scenarios
from halab.prove.scenarios import Entry, Phase, Scenario
from halab.spec import Lab

# Rough cost of one step on the local lab, by primitive, to fill a duration: the fault's
# bound and the watch after it, the heal's, and each side's RECOVERED seconds. A crash
# boots a node again, which takes the longest.
STEP_SECONDS = {
    "service": 20.0,
    "crash": 45.0,
    "link": 25.0,
    "pause": 30.0,
    "reload": 15.0,
    "reweight": 25.0,
    "vip-deleted": 15.0,
    "realserver-error": 25.0,
    "realserver-slow": 30.0,
    "director-partition": 30.0,
    "vrrp-blocked": 30.0,
    "multicast-dropped": 30.0,
    "one-way": 30.0,
    "advert-loss": 50.0,
    "link-flap": 60.0,
    "garp-lost": 110.0,  # the client ages its router-like ARP entry (60 s reachable)
}
DEFAULT_STEP_SECONDS = 25.0
# The quiet gap after each step, in seconds: long enough to see a late flap.
GAP = (3.0, 10.0)
# How often a director fault runs while a real server is down (scenarios.beside), drawn from
# a stream of its own: the seed's faults, targets and gaps come in the order they would
# without overlaps (a held fault lengthens its step, so a duration may hold fewer).
OVERLAP = 1 / 3
OVERLAP_STREAM = 0x0FE1
DURATION = re.compile(r"(\d+)(s|m|h)?")
UNIT = {"s": 1, "m": 60, "h": 3600, None: 1}
LONGEST = 24 * 3600
SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Step:
    """One step of a schedule: an entry of the catalogue on a target, then a quiet gap."""

    entry: str
    target: str
    gap: float
    estimate: float  # seconds the step and its gap are expected to take
    held: str = ""  # a real-server entry held down while this one runs (scenarios.beside)
    held_target: str = ""

    def words(self) -> str:
        held = f" while {self.held} holds on {self.held_target}" if self.held else ""
        return f"{self.entry} on {self.target}{held}, then {self.gap:.0f} s quiet"


def duration(text: str) -> float:
    """Seconds of a --duration value: 90, 90s, 3m, 1h."""
    found = DURATION.fullmatch(text)
    seconds = int(found.group(1)) * UNIT[found.group(2)] if found else 0
    if not 0 < seconds <= LONGEST:
        raise UsageError(f"--duration {text!r}: whole seconds, minutes or hours (90, 90s, 3m, 1h), up to 24h")
    return float(seconds)


def seed(value: int) -> int:
    """A seed the plan can be replayed from: a whole number from 0 to 2**32 - 1."""
    if not 0 <= value < SEED_LIMIT:
        raise UsageError(f"--seed {value}: a whole number from 0 to {SEED_LIMIT - 1}")
    return value


def entries(lab: Lab) -> tuple[list[Entry], list[str]]:
    """The catalogue entries a campaign can chain on this lab, and why any other is left out.

    An entry's expectations start from the lab's normal state (each VIP on its MASTER). With
    nopreempt a director fault leaves the VIP on the BACKUP after its heal, so the next
    step would start elsewhere than its expectations say: director faults are left out."""
    usable, left_out = [], []
    for entry in pool():
        if entry.target != "server" and not lab.vrrp.preempt:
            left_out.append(f"{entry.name}: nopreempt leaves the VIP on the BACKUP after the heal")
        else:
            usable.append(entry)
    return usable, left_out


def pool() -> tuple[Entry, ...]:
    """Every entry a campaign draws from: the clean faults, the gray failures and the network faults."""
    return (*scenarios.CATALOGUE, *scenarios.GRAY, *scenarios.NETWORK)


def plan(lab: Lab, chosen_seed: int, seconds: float) -> list[Step]:
    """The schedule the seed gives for about `seconds` on this lab: the same seed and lab
    always give the same schedule (random.Random is deterministic for a seed)."""
    usable, _ = entries(lab)
    if not usable:
        raise UsageError(f"lab {lab.name!r}: no fault of the catalogue can be chained on it")
    rng = random.Random(seed(chosen_seed))
    overlapping = random.Random(seed(chosen_seed) ^ OVERLAP_STREAM)
    directors, held = scenarios.overlaps(lab)
    servers = sorted(lab.virtual_services[0].real_servers)
    steps: list[Step] = []
    total = 0.0
    while total < seconds:
        entry = rng.choice(usable)
        target = rng.choice(servers) if entry.target == "server" else _director(lab, entry.target)
        gap = round(rng.uniform(*GAP), 1)
        cost = STEP_SECONDS.get(entry.primitive, DEFAULT_STEP_SECONDS) + gap
        step = Step(entry.name, target, gap, cost)
        if entry in directors and overlapping.random() < OVERLAP:
            beside = overlapping.choice(held)
            extra = STEP_SECONDS.get(beside.primitive, DEFAULT_STEP_SECONDS)
            step = replace(step, estimate=cost + extra, held=beside.name, held_target=overlapping.choice(servers))
        steps.append(step)
        total += step.estimate
    return steps


def _director(lab: Lab, target: str) -> str:
    """The director an entry's target names: the first VIP's MASTER, or its BACKUP."""
    master, backup = bounds.pair(lab)
    return master if target == "master" else backup


def scenario(lab: Lab, chosen_seed: int, steps: list[Step]) -> Scenario:
    """The schedule as one scenario: each step's phases, then its quiet gap (an idle phase)."""
    by_name = {entry.name: entry for entry in pool()}
    phases: list[Phase] = []
    for step in steps:
        run = scenarios.scenario(lab, by_name[step.entry], step.target)
        if step.held:
            run = scenarios.beside(scenarios.scenario(lab, by_name[step.held], step.held_target), run)
        phases.extend(run.phases)
        phases.append(scenarios.quiet(lab, step.gap))
    description = f"seed {chosen_seed}: {len(steps)} faults from the catalogue, each healed, with quiet gaps"
    return Scenario(
        f"chaos-{chosen_seed}",
        description,
        tuple(phases),
        remake=lambda judged: scenario(judged, chosen_seed, steps),
    )


def plan_text(lab: Lab, chosen_seed: int, steps: list[Step]) -> str:
    """The schedule in words, for --plan and the start of a run."""
    _, left_out = entries(lab)
    lines = [f"campaign on lab {lab.name!r}, seed {chosen_seed}: {len(steps)} steps, about {_total(steps):.0f} s"]
    lines += [f"  {number:>3}. {step.words()} (~{step.estimate:.0f} s)" for number, step in enumerate(steps, 1)]
    lines += [f"  left out: {reason}" for reason in left_out]
    return "\n".join(lines)


def _total(steps: list[Step]) -> float:
    return sum(step.estimate for step in steps)
