"""What a failover run measured: one result per phase, one run per scenario, and the margin.

A phase's verdict is honest about its slack: an outage within the protocol's bound (to the
probe's resolution) is "within"; one over the bound but inside the noise margin passes,
shown as "over the bound by N ms, within the noise margin" and never as a plain pass; one
beyond the margin, or any problem, is a failure. And about its reach: a phase whose fault
the probe's traffic never met (a real server no request went to, a director that did not
hold the client's VIP) proves nothing, and is "not exercised", which fails the run unless
the operator accepts it (`--accept-unexercised`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

from halab.errors import UsageError, shown

WITHIN = "within"
NOISE = "noise"
FAIL = "fail"
NOT_EXERCISED = "not exercised"


@dataclass(frozen=True)
class Margin:
    """The slack a phase gets over its protocol bound: `fixed` seconds + `share` of the bound.

    The default suits shared CI machines: the probe's own interval and per-request timeout,
    the gratuitous ARP reaching the client, and five guests sharing two cores on a host that
    runs other work too (timers stretch with the bound).
    """

    fixed: float = 2.0
    share: float = 0.2

    FORMAT = re.compile(r"(?:(\d{1,6}(?:\.\d{1,6})?)s)?(?:\+?(\d{1,6}(?:\.\d{1,6})?)%)?")
    HELP = "SECONDS[s][+PERCENT%] added to every bound before a phase fails, e.g. 2s+20% (default), 0.5s, 10%, 0"
    # Past these a phase cannot fail at all: a margin that large is a typo, not a choice.
    MOST_SECONDS, MOST_PERCENT = 3600, 1000

    def of(self, bound: float) -> float:
        return self.fixed + self.share * bound

    def __str__(self) -> str:
        return f"{self.fixed:g} s + {self.share * 100:g} % of the bound"

    @classmethod
    def parse(cls, text: str) -> Margin:
        """A --margin value: "2s+20%", "0.5s", "10%", "0" (a bare number is seconds)."""
        spec = text.replace(" ", "")
        spec = f"{spec}s" if re.fullmatch(r"\d+(?:\.\d+)?", spec) else spec
        matched = cls.FORMAT.fullmatch(spec)
        if not spec or not matched or not (matched[1] or matched[2]):
            raise UsageError(f"--margin: {shown(text)} is not {cls.HELP}")
        fixed, percent = float(matched[1] or 0), float(matched[2] or 0)
        if fixed > cls.MOST_SECONDS or percent > cls.MOST_PERCENT:
            raise UsageError(
                f"--margin: {shown(text)} is over {cls.MOST_SECONDS} s or {cls.MOST_PERCENT} %: no phase would fail"
            )
        return cls(fixed, percent / 100)


# What a run uses unless told otherwise (--margin): suited to shared, noisy CI machines.
DEFAULT_MARGIN = Margin()


@dataclass
class PhaseResult:
    scenario: str
    phase: str
    bound_ms: int
    basis: str
    margin_ms: int
    outage_ms: int
    failed: int
    failed_outside: int
    first_outside: str  # the first such failure: when, to which VIP, what error
    vip_moves: list[dict]
    problems: list[str]
    start: float  # seconds since the probe started
    window_end: float  # failures after this count against the phase
    end: float
    kind: str = ""
    resolution_ms: int = 0  # the probe's interval: the smallest gap between two answers it can see
    established: str = ""  # the expectation judged (established.KEPT/LOST) or ""
    held: int = 0  # keep-alive connections established when the phase began
    survived: int = 0
    longest_stall_ms: int = 0
    stall_bound_ms: int = 0
    transitions: int | None = None  # VRRP state changes counted on the directors (idle only)
    gateway_moves: list[dict] = field(default_factory=list)  # NAT: a real server's gateway changing owner
    failing_ms: int = 0  # from the action to the end of the phase's last failed request; 0: none failed
    unexercised: str = ""  # why the probe's traffic never met the fault; "" when it did
    accept_unexercised: bool = False  # the operator asked that a phase not exercised not fail the run
    notify: dict = field(default_factory=dict)  # the notify stream against the VIP moves (halab.prove.notify)
    split: dict = field(default_factory=dict)  # per VIP: halab.prove.split.figures (phases observing "split")
    split_expected: str = ""  # what was judged of split brain (scenarios.SPLITS), "" nothing
    split_bound_ms: int = 0  # its bound: detection ("splits") or one MASTER again ("rejoins")
    loss: float = 0.0  # advert-loss: the loss rate applied, percent
    loss_seconds: float = 0.0  # and for how long (the window its split figures cover)

    @property
    def connections(self) -> str:
        """ "survived/held", or "-" when no connection was held."""
        return f"{self.survived}/{self.held}" if self.held else "-"

    @property
    def limit_ms(self) -> int:
        """The longest gap that still passes: the bound plus the margin."""
        return self.bound_ms + self.margin_ms

    @property
    def over_ms(self) -> int:
        """How far the outage went past the bound (and the probe's resolution); 0 within it."""
        return max(0, self.outage_ms - self.bound_ms - self.resolution_ms)

    def reasons(self) -> list[str]:
        """Why the phase failed; empty when it passed."""
        reasons = list(self.problems)
        if self.outage_ms > self.bound_ms + self.margin_ms:
            reasons.insert(0, f"outage {self.outage_ms} ms > bound {self.bound_ms} + margin {self.margin_ms} ms")
        if self.failed_outside:
            reasons.insert(
                0, f"{self.failed_outside} requests failed after the window closed, first: {self.first_outside}"
            )
        return reasons

    @property
    def verdict(self) -> str:
        """FAIL on any reason; else NOT_EXERCISED when the traffic never met the fault (its
        numbers prove nothing); else WITHIN the bound, or over it but within the NOISE margin."""
        if self.reasons():
            return FAIL
        if self.unexercised:
            return NOT_EXERCISED
        return NOISE if self.over_ms else WITHIN

    @property
    def verdict_text(self) -> str:
        """The verdict in words, as the table and the reports show it."""
        if self.verdict == NOISE:
            return f"over the bound by {self.over_ms} ms, within the noise margin"
        if self.verdict == NOT_EXERCISED:
            return f"not exercised: {self.unexercised}"
        return "within the bound" if self.verdict == WITHIN else "fail"

    @property
    def passed(self) -> bool:
        if self.verdict == NOT_EXERCISED:
            return self.accept_unexercised
        return self.verdict != FAIL


@dataclass
class ScenarioRun:
    """Everything measured in one scenario: for the report, the plot and the verdicts."""

    scenario: str
    description: str
    started: float  # host clock, epoch seconds
    clock_offset: float  # client clock minus host clock
    macs: dict[str, str]  # MAC -> node
    requests: list[dict]  # agent records, times made relative to `started`
    phases: list[PhaseResult]
    connections: list[dict] = field(default_factory=list)  # held connections, times relative too
    failed_step: str = ""  # the step that raised, when one did: a phase's name, or a preparation
    error: str = ""  # what it raised; the phases after it were not run

    @property
    def passed(self) -> bool:
        return not self.error and all(p.passed for p in self.phases)

    @classmethod
    def from_dict(cls, data: dict) -> ScenarioRun:
        """A run as as_dict wrote it (failover.json, its derived keys dropped): how the HTML
        page reads a run folder back, so any run's page can be made from its files alone."""
        kept = {item.name for item in fields(PhaseResult)}
        phases = [PhaseResult(**{k: v for k, v in phase.items() if k in kept}) for phase in data["phases"]]
        own = {item.name for item in fields(cls)} - {"phases"}
        return cls(**{k: v for k, v in data.items() if k in own}, phases=phases)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        for phase, result in zip(data["phases"], self.phases, strict=False):
            phase.update(passed=result.passed, verdict=result.verdict, verdict_text=result.verdict_text)
        return data
