"""Failover scenarios, measured as the VIP's users see them.

A scenario is a fault and its repair, each a *phase*. While it runs, the agent on the
client (probe.py) sends requests to every VIP at a fixed rate and records each
one. Each phase is judged against its protocol bound, from the lab file:

- keepalived stopped cleanly on the MASTER: it sends a priority-0 advert and the BACKUP
  takes over after its skew time alone, (256 - priority) / 256 s (VRRPv3: times advert_int);
- the MASTER crashed or cut off: the BACKUP waits 3 x advert_int + skew (master down);
- the MASTER back: one advert settles who holds the VIP (preempt: the MASTER again,
  nopreempt: the BACKUP keeps it);
- with NAT, the real servers' gateway moves with the VIP (one VRRP instance holds both): a
  real server's replies reach the new MASTER once its ARP entry for the gateway follows the
  gratuitous ARP. A real server's agent watches that entry, and each phase records when it
  changed owner (`gateway_moves`), beside when the client saw the VIP move;
- a real server's nginx stopped or its node crashed: the health checker notices within
  delay_loop + connect_timeout, then retries once (keepalived's default `retry 1`,
  `delay_before_retry 1`) before IPVS drops it; back, it rejoins at the next check.

A phase passes when the longest gap between successful responses is within its bound +
margin (2 s + 20 % of the bound), no request failed after that window, and the VIPs and IPVS members are where
the protocol says they must be at the end.

The probe also holds keep-alive connections through every VIP (halab.prove.established).
A director's clean stop or crash judges them too: without `lvs_sync_daemon` the new
MASTER's IPVS has no entry for them and its own TCP stack answers with RST, so some must
be lost; with it the BACKUP holds the MASTER's connection table, so none may be lost and
none may stall longer than twice the bound plus TCP's minimum retransmission timeout.
"""

from __future__ import annotations

import functools
import itertools
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from halab.errors import HalabError, ProviderError
from halab.prove import established, ipvs, probe
from halab.providers.base import Provider
from halab.spec import Lab

# Added to every bound, for what the protocol does not count: the probe's own interval
# and per-request timeout, the gratuitous ARP reaching the client, and five guests
# sharing two cores on a host that runs other work too (timers stretch with the bound).
MARGIN = 2.0
MARGIN_SHARE = 0.2


def margin(bound: float) -> float:
    """The slack a phase gets over its protocol bound: MARGIN + MARGIN_SHARE x bound."""
    return MARGIN + MARGIN_SHARE * bound


PROBE_RATE = 20.0
PROBE_TIMEOUT = 1.0
# Keep-alive connections held per VIP, each sending a request every HOLD_INTERVAL seconds;
# one stalled for HOLD_GIVE_UP seconds is given up (lost) and its slot opens another.
HOLD = 8
HOLD_INTERVAL = 0.1
HOLD_GIVE_UP = 30.0
# The idle soak: probing with no fault, this long.
IDLE = 60.0
BASELINE = 2.0
TAIL = 2.0
# keepalived's checker defaults (keepalived.conf(5)): one retry, one second apart.
CHECK_RETRY = 1
CHECK_DELAY_BEFORE_RETRY = 1
# A client that gets no gratuitous ARP keeps a VIP's old MAC until its neighbour entry
# ages out. Linux defaults: reachable for up to 1.5 x base_reachable_time (30 s), then
# delay_first_probe_time (5 s), then ucast_solicit (3) unicast probes 1 s apart.
ARP_CACHE_BOUND = 1.5 * 30 + 5 + 3
# A phase ends early once the last RECOVERED seconds of requests all succeeded.
RECOVERED = 2.0
# The client's clock is known to within half an ssh round trip: a request sent this close
# before an action is counted with the action's phase.
CLOCK_SLACK = 0.15


# What a phase's bound is made of, for the findings (halab.prove.findings).
KINDS = {
    "stop": "a clean stop: the BACKUP's skew",
    "down": "master down: 3 adverts + skew",
    "return": "the MASTER back: one advert",
    "heal": "a healed split brain: gratuitous ARP or the client's ARP ageing",
    "check": "a real server down: the health checker's timings",
    "rejoin": "a real server back: its next passing check",
    "idle": "no fault: no VRRP transition and no failed request",
}


@dataclass(frozen=True)
class Phase:
    """One action on the lab, what it may cost the client, and where things must end up."""

    name: str
    act: Callable[[Provider], None]
    bound: float
    basis: str
    holders: dict[str, str]  # VIP -> director that must hold it afterwards
    members: dict[str, bool] = field(default_factory=dict)  # real server -> must be in IPVS
    settle: float = 0.0  # how long after the action the end state may take
    kind: str = ""  # which bound it is (KINDS): what the findings read
    established: str = ""  # what must happen to the held connections (established.KEPT/LOST), "" not judged
    sticky: bool = False  # persistence: every request of the phase answered by one real server


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    phases: tuple[Phase, ...]


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
    established: str = ""  # the expectation judged (established.KEPT/LOST) or ""
    held: int = 0  # keep-alive connections established when the phase began
    survived: int = 0
    longest_stall_ms: int = 0
    stall_bound_ms: int = 0
    transitions: int | None = None  # VRRP state changes counted on the directors (idle only)

    @property
    def connections(self) -> str:
        """ "survived/held", or "-" when no connection was held."""
        return f"{self.survived}/{self.held}" if self.held else "-"

    gateway_moves: list[dict] = field(default_factory=list)  # NAT: a real server's gateway changing owner

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
    def passed(self) -> bool:
        return not self.reasons()


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

    def as_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        for phase, result in zip(data["phases"], self.phases, strict=False):
            phase["passed"] = result.passed
        return data


# Where a director's keepalived writes its log: the local lab's file, systemd's journal elsewhere.
TRANSITION_LOG = "cat /var/log/keepalived.log 2>/dev/null || journalctl -u keepalived --no-pager"


# --- the scenarios of a lab ------------------------------------------------------------


def skew(lab: Lab, priority: int) -> float:
    """VRRP skew time: (256 - priority) / 256 s; in VRRPv3 scaled by the advert interval."""
    scale = lab.vrrp.advert_int if lab.vrrp.version == 3 else 1.0
    return (256 - priority) * scale / 256


def heal_bound(lab: Lab, refresh: float | None) -> tuple[float, str]:
    """A healed split brain's bound and its basis, given garp_master_refresh (None: unset).

    The director that stayed MASTER sends no gratuitous ARP unless told to refresh, so
    clients still holding the other director's MAC wait for their ARP entry to age; and its
    IPVS table may be empty at first, since its checks failed while it was cut off.
    """
    check = lab.virtual_services[0].health_check
    arp, arp_basis = (
        (refresh, f"garp_master_refresh {refresh} s")
        if refresh
        else (ARP_CACHE_BOUND, "no garp_master_refresh: client ARP entry ages out (1.5 x 30 + 5 + 3 s)")
    )
    advert = lab.vrrp.advert_int
    return (
        max(arp, check.delay_loop + check.connect_timeout) + advert,
        f"max({arp_basis}, recheck {check.delay_loop} + {check.connect_timeout} s) + one advert {advert:g} s",
    )


def detect_bound(delay_loop: float, connect_timeout: float) -> tuple[float, str]:
    """How long a dead real server stays in IPVS: the checker notices within delay_loop +
    connect_timeout, then retries (keepalived's defaults) before dropping it."""
    return (
        delay_loop + connect_timeout + CHECK_RETRY * (CHECK_DELAY_BEFORE_RETRY + connect_timeout),
        f"delay_loop {delay_loop} + connect_timeout {connect_timeout} "
        f"+ {CHECK_RETRY} retry x ({CHECK_DELAY_BEFORE_RETRY} + {connect_timeout}) s",
    )


def sync_outcome(lab: Lab) -> str:
    """What a director's stop or crash does to established connections in this lab."""
    return established.KEPT if lab.vrrp.lvs_sync_daemon else established.LOST


def sticky(lab: Lab, moves: bool) -> bool:
    """Whether a phase must keep the client on one real server: with persistence_timeout,
    always when the VIP stays put, and across a takeover only with connection sync (which
    carries IPVS's persistence templates to the BACKUP too)."""
    return bool(lab.virtual_services[0].persistence_timeout) and (not moves or lab.vrrp.lvs_sync_daemon)


def expectation(phase: Phase) -> str:
    """What the phase expects beyond its bound, in words (for --list-scenarios)."""
    words = [held_expectation(phase)] + (["the client stays on one real server (persistence)"] if phase.sticky else [])
    return "; ".join(word for word in words if word)


def held_expectation(phase: Phase) -> str:
    """The phase's expectation for its held connections, in words."""
    if phase.established == established.KEPT:
        limit = established.stall_bound(phase.bound)
        return f"established connections kept (lvs_sync_daemon), stall bound {limit * 1000:.0f} ms"
    if phase.established == established.LOST:
        return "established connections lost (no lvs_sync_daemon: the new MASTER answers them with RST)"
    return ""


def scenarios(lab: Lab) -> list[Scenario]:
    """Every scenario the lab supports, in the order they run."""
    master = lab.masters()[str(lab.vips[0])]
    backup = next(name for name in lab.role("director") if name != master)
    backup_priority = lab.nodes[backup].priority or 0
    advert = lab.vrrp.advert_int
    down = 3 * advert + skew(lab, backup_priority)
    down_basis = f"3 x advert_int {advert:g} + skew {skew(lab, backup_priority):.3f} s"
    stop_basis = f"skew (256 - {backup_priority}) / 256" + (f" x {advert:g}" if lab.vrrp.version == 3 else "")
    normal = lab.masters()
    failed_over = {vip: backup for vip in normal}
    back = normal if lab.vrrp.preempt else failed_over
    returns = "preempt: the MASTER takes the VIP back" if lab.vrrp.preempt else "nopreempt: the BACKUP keeps the VIP"
    back_basis = f"one advert ({advert:g} s); {returns}"
    # Two MASTERs after a cut heals: the lower priority steps down whatever nopreempt says.
    healed = normal
    heal, heal_basis = heal_bound(lab, lab.vrrp.garp_master_refresh)
    server = next(iter(lab.virtual_services[0].real_servers))

    moves = sticky(lab, moves=True)

    def lost(action: Action, judged: str = "") -> Phase:
        """The MASTER gone without a word (crashed, cut off): the BACKUP waits out master-down."""
        return Phase(
            *action, down, down_basis, failed_over, kind="down", established=judged, sticky=bool(judged) and moves
        )

    def returned(action: Action) -> Phase:
        """The MASTER back: one advert settles who holds the VIP."""
        return Phase(*action, advert, back_basis, back, settle=down, kind="return")

    return [
        Scenario(
            "keepalived-stop",
            f"keepalived stopped cleanly on the MASTER {master}, then started",
            (
                Phase(
                    f"stop keepalived on {master}",
                    lambda p: p.stop_service(master, "keepalived"),
                    skew(lab, backup_priority),
                    stop_basis,
                    failed_over,
                    kind="stop",
                    established=sync_outcome(lab),
                    sticky=moves,
                ),
                returned((f"start keepalived on {master}", lambda p: p.start_service(master, "keepalived"))),
            ),
        ),
        Scenario(
            "director-crash",
            f"the MASTER {master} crashes (kernel killed), then boots again",
            (
                lost((f"crash {master}", lambda p: p.crash(master)), sync_outcome(lab)),
                returned((f"restart {master}", lambda p: p.restart(master))),
            ),
        ),
        Scenario(
            "link-cut",
            f"the MASTER {master}'s link to the lab switch is cut, then restored",
            (
                lost((f"cut {master}'s link", lambda p: p.cut_link(master))),
                Phase(
                    f"restore {master}'s link",
                    lambda p: p.restore_link(master),
                    heal,
                    heal_basis,
                    healed,
                    settle=down,
                    kind="heal",
                ),
            ),
        ),
        real_server_scenario(
            "nginx-stop",
            f"nginx stopped on the real server {server}, then started",
            (f"stop nginx on {server}", lambda p: p.stop_service(server, "nginx")),
            (f"start nginx on {server}", lambda p: p.start_service(server, "nginx")),
            server,
            lab,
        ),
        real_server_scenario(
            "realserver-crash",
            f"the real server {server} crashes, then boots again",
            (f"crash {server}", lambda p: p.crash(server)),
            (f"restart {server}", lambda p: p.restart(server)),
            server,
            lab,
        ),
    ]


def soak(lab: Lab, seconds: float = IDLE) -> Scenario:
    """Probing with no fault: run on request (`--scenario idle`), not with the faults. Short
    adverts must not make VRRP flap: no state transition and no failed request."""
    return Scenario(
        "idle",
        f"no fault for {seconds:g} s: no VRRP transition, no failed request",
        (
            Phase(
                "idle",
                lambda p: time.sleep(seconds),
                0.0,
                "none: nothing happens",
                lab.masters(),
                kind="idle",
                sticky=sticky(lab, moves=False),
            ),
        ),
    )


Action = tuple[str, Callable[[Provider], None]]


def real_server_scenario(name: str, description: str, fault: Action, repair: Action, server: str, lab: Lab) -> Scenario:
    """A real server's fault and repair: the health checker notices within delay_loop +
    connect_timeout and one retry, then IPVS drops it; back, it rejoins at the next check.
    The VIPs stay where they are throughout."""
    check = lab.virtual_services[0].health_check
    detect, detect_basis = detect_bound(check.delay_loop, check.connect_timeout)
    normal = lab.masters()
    return Scenario(
        name,
        description,
        (
            Phase(fault[0], fault[1], detect, detect_basis, normal, {server: False}, settle=detect, kind="check"),
            Phase(
                repair[0],
                repair[1],
                0.0,
                "none: it rejoins only once its check passes",
                normal,
                {server: True},
                settle=check.delay_loop + check.connect_timeout,
                kind="rejoin",
            ),
        ),
    )


# --- running one -----------------------------------------------------------------------


@dataclass
class Seen:
    """What one scenario's run observed, relative to its start: the probe's requests and held
    connections, the nodes' MACs, VRRP transitions per idle phase, a NAT gateway's moves."""

    requests: list[dict]
    connections: list[dict]
    macs: dict[str, str]
    transitions: dict[str, int]
    gateway: list[dict]


class Runner:
    """Runs scenarios on a lab that is up, through the provider's fault verbs and remote commands.

    It reads the lab only from the provider (the lab as run: its NIC names), never from a file.
    """

    def __init__(self, provider: Provider, progress: Callable[[str], None] = print) -> None:
        self.provider = provider
        self.lab = provider.lab
        self.remote = provider.remote
        self.progress = progress
        self.client = next(iter(self.lab.role("client")))
        self.targets = [f"{vip}:{self.lab.virtual_services[0].port}" for vip in self.lab.vips]

    def run(self, scenario: Scenario) -> ScenarioRun:
        """Measure one scenario. A step that fails (a node that does not boot again) ends it:
        the phases done so far are judged, and the run carries the step and its error."""
        step, error = "restore the baseline", ""
        started, offset, macs = time.time(), 0.0, {}
        records: list[dict] = []
        held: list[dict] = []
        transitions: dict[str, int] = {}
        gateway: list[dict] = []
        marks: list[tuple[Phase, float, float, list[str]]] = []
        try:
            self.restore_baseline()
            step = "read the client's clock and the nodes' MACs"
            offset = self.remote.clock_offset(self.client)
            macs = self.macs()
            self.progress(f"scenario {scenario.name}: {scenario.description}")
            step = "start the probe"
            started = time.time()
            watch = self._watch_gateway()
            http = probe.HttpProbe(
                self.remote,
                self.client,
                self.targets,
                PROBE_RATE,
                PROBE_TIMEOUT,
                hold=HOLD,
                hold_interval=HOLD_INTERVAL,
                stall_limit=HOLD_GIVE_UP,
            ).start()
            try:
                time.sleep(BASELINE)
                for phase in scenario.phases:
                    step = phase.name
                    acted = time.time()
                    self.progress(f"  {phase.name} (bound {phase.bound * 1000:.0f} ms: {phase.basis})")
                    before = self.transitions() if phase.kind == "idle" else {}
                    phase.act(self.provider)
                    done = time.time()
                    self._observe(http, done, phase, offset)
                    problems = self.end_state_problems(phase)
                    if phase.kind == "idle":
                        flaps = self._flaps(before, self.transitions())
                        problems += [f"{flaps} VRRP state transitions while idle, expected 0"] if flaps else []
                        transitions[phase.name] = flaps
                    marks.append((phase, acted, done, problems))
                step = "stop the probe"
            finally:
                records = http.stop()
                held = http.connections()
                gateway = self._gateway_changes(watch, started)
        except HalabError as exc:
            error = str(exc)
            self.progress(f"  {step}: {error}")
        requests = [{**r, "sent": r["sent"] - offset - started, "done": r["done"] - offset - started} for r in records]
        connections = [relative(c, offset + started) for c in held]
        seen = Seen(requests, connections, macs, transitions, gateway)
        results = self._judged(scenario.name, marks, started, seen)
        return ScenarioRun(
            scenario.name,
            scenario.description,
            started,
            offset,
            macs,
            requests,
            results,
            connections,
            step if error else "",
            error,
        )

    @staticmethod
    def _judged(
        scenario: str, marks: list[tuple[Phase, float, float, list[str]]], started: float, seen: Seen
    ) -> list[PhaseResult]:
        """Each phase judged on what the probe saw from its action until the next phase's."""
        results = []
        for index, (phase, acted, done, problems) in enumerate(marks):
            until = (
                marks[index + 1][1] - started - CLOCK_SLACK
                if index + 1 < len(marks)
                else max((r["done"] for r in seen.requests), default=0.0)
            )
            result = judge(
                scenario,
                phase,
                acted - started - CLOCK_SLACK,
                done - started,
                until,
                seen.requests,
                seen.macs,
                problems,
            )
            judge_connections(result, phase, seen.connections)
            result.transitions = seen.transitions.get(phase.name)
            if phase.kind == "idle" and result.failed:
                result.problems.append(f"{result.failed} requests failed while idle, expected 0")
            result.gateway_moves = owner_changes(seen.gateway, result.start, until, seen.macs)
            results.append(result)
        return results

    def _observe(self, http: probe.HttpProbe, done: float, phase: Phase, offset: float) -> None:
        """Watch the probe after an action: at least settle + TAIL seconds, then until the
        last RECOVERED seconds of (finished) requests all succeeded, at most until the
        failure window closes."""
        earliest = done + phase.settle + TAIL
        latest = done + max(phase.bound, phase.settle) + margin(phase.bound) + TAIL
        while time.time() < latest:
            horizon = time.time() - PROBE_TIMEOUT - 0.25  # every request sent before it has finished
            recent = [r for r in http.requests() if horizon - RECOVERED <= r["sent"] - offset <= horizon]
            if (
                time.time() >= earliest
                and horizon - RECOVERED > done
                and len(recent) >= RECOVERED * PROBE_RATE / 2
                and all(r["ok"] for r in recent)
            ):
                return
            time.sleep(0.25)

    # --- NAT: the gateway as a real server sees it -----------------------------------

    def _watch_gateway(self) -> tuple[str, float, subprocess.Popen[str]] | None:
        """NAT: an agent on the last real server (the real-server scenarios fault the first)
        recording each change of its ARP entry for the gateway (its clock offset read first);
        None for other methods."""
        if self.lab.nat is None:
            return None
        server = list(self.lab.virtual_services[0].real_servers)[-1]
        offset = self.remote.clock_offset(server)
        process = probe.spawn(self.remote, server, ["neigh", "--ip", str(self.lab.nat.gateway)])
        return server, offset, process

    @staticmethod
    def _gateway_changes(watch: tuple[str, float, subprocess.Popen[str]] | None, started: float) -> list[dict]:
        """The watcher's records, ended (finish closes its stdin), times relative to the probe's start."""
        if watch is None:
            return []
        _, offset, process = watch
        records = probe.finish(process, timeout=15)
        return [{**r, "at": r["at"] - offset - started} for r in records if "mac" in r]

    # --- the lab's state, over ssh --------------------------------------------------

    def macs(self) -> dict[str, str]:
        """MAC -> node, for naming the VIP's holder from the client's ARP table (and, with NAT,
        the gateway's from a real server's)."""
        interfaces = [self.lab.vrrp.interface] + ([self.lab.nat.interface] if self.lab.nat else [])
        found = {}
        for node in self.lab.nodes:
            for interface in interfaces:
                result = self.remote.run(node, f"cat /sys/class/net/{interface}/address", timeout=10)
                if result.returncode == 0:
                    found[result.stdout.strip()] = node
        return found

    def transitions(self) -> dict[str, int]:
        """Director -> VRRP state changes its keepalived has logged so far (-1: unreadable)."""
        counts = {}
        for director in self.lab.role("director"):
            result = self.remote.run(director, f"({TRANSITION_LOG}) | grep -c 'Entering [A-Z]* STATE'", timeout=15)
            counts[director] = int(result.stdout.strip()) if result.stdout.strip().isdigit() else -1
        return counts

    @staticmethod
    def _flaps(before: dict[str, int], after: dict[str, int]) -> int:
        """State changes between two counts; a log that could not be read counts as one."""
        return sum(1 if -1 in (before.get(d, -1), count) else count - before[d] for d, count in after.items())

    def holders(self) -> dict[str, list[str]]:
        """VIP -> directors holding it now (should be exactly one each)."""
        held: dict[str, list[str]] = {str(vip): [] for vip in self.lab.vips}
        for row in self.provider.status():
            for vip in row.vips:
                held.setdefault(vip, []).append(row.name)
        return held

    def members(self) -> set[str] | None:
        """Real servers in the first service's IPVS table on the director holding its VIP."""
        service = self.lab.virtual_services[0]
        holder = self.holders().get(str(service.vip), [])
        if len(holder) != 1:
            return None
        table = self.remote.run(holder[0], "ipvsadm -Ln", timeout=10)
        found = ipvs.parse(table.stdout).get((service.protocol, str(service.vip), service.port))
        addresses = {d.address for d in found.destinations} if found else set()
        return {name for name, node in self.lab.nodes.items() if str(node.address) in addresses}

    def end_state_problems(self, phase: Phase) -> list[str]:
        problems = []
        held = self.holders()
        for vip, director in phase.holders.items():
            if held.get(vip) != [director]:
                problems.append(f"VIP {vip} held by {held.get(vip) or 'nobody'}, expected {director}")
        if phase.members:
            members = self.members()
            for server, present in phase.members.items():
                if members is None or (server in members) != present:
                    problems.append(
                        f"{server} {'missing from' if present else 'still in'} the IPVS table "
                        f"(members: {sorted(members) if members is not None else 'no single VIP holder'})"
                    )
        return problems

    def restore_baseline(self, timeout: float = 60.0) -> None:
        """Back to the lab's normal state before a scenario: every VIP on its own MASTER
        (after nopreempt left it elsewhere) and every real server in IPVS."""
        normal = self.lab.masters()
        for vip, director in normal.items():
            for holder in self.holders().get(vip, []):
                if holder != director:
                    self.progress(f"  (baseline: moving {vip} back from {holder} to {director})")
                    self.provider.stop_service(holder, "keepalived")
                    self._wait(functools.partial(self._held_by, vip, director), timeout, f"{vip} to move to {director}")
                    self.provider.start_service(holder, "keepalived")
        everyone = set(self.lab.virtual_services[0].real_servers)
        self._wait(
            lambda: all(self.holders()[v] == [d] for v, d in normal.items()) and self.members() == everyone,
            timeout,
            "the VIPs on their MASTERs and every real server in IPVS",
        )
        self._wait(self._client_reaches_every_vip, timeout, "the client to reach every VIP")

    def _held_by(self, vip: str, director: str) -> bool:
        return self.holders().get(vip) == [director]

    def _client_reaches_every_vip(self) -> bool:
        """A few requests per VIP from the client all answered. If not, the client may still
        hold a MAC from an earlier scenario (a healed split brain sends no ARP): forget it,
        so each scenario starts from a client that resolves the VIP afresh."""
        reached = True
        for target in self.targets:
            pages = probe.run(
                self.remote,
                self.client,
                ["capture", "--target", target, "--count", "3", "--timeout", "1", "--iface", self.lab.vrrp.interface],
            )[0]["pages"]
            if any(page.startswith("FAILED") for page in pages):
                vip = target.rsplit(":", 1)[0]
                self.remote.run(self.client, f"ip neigh del {vip} dev {self.lab.vrrp.interface}")
                reached = False
        return reached

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise ProviderError(f"waited {timeout:.0f} s for {what}")
            time.sleep(0.5)


# --- judging a phase --------------------------------------------------------------------


def judge(
    scenario: str,
    phase: Phase,
    acted: float,
    done: float,
    until: float,
    requests: list[dict],
    macs: dict[str, str],
    problems: list[str],
) -> PhaseResult:
    """The numbers of one phase from the probe's records (times relative to the probe start).

    The failure window opens when the action starts and closes `bound + margin` after it
    returned (a restart returns once the node has booted) or after a node last took a VIP
    over within the phase, whichever is later: a MASTER that preempts seconds after its
    keepalived started resets the requests in flight on the BACKUP at that moment (found by
    CI on VMs: one reset at +4.09 s, the VIP back at +4.15 s, the window closed at +3.2 s).
    """
    window_end = max([done, *takeovers(requests, acted, until, macs)]) + phase.bound + margin(phase.bound)
    mine = [r for r in requests if acted <= r["sent"] < until]
    if phase.sticky:
        problems = problems + stuck(requests, acted, until)
    failures = [r for r in mine if not r["ok"]]
    outside = [r for r in failures if r["sent"] > window_end]
    return PhaseResult(
        scenario=scenario,
        phase=phase.name,
        bound_ms=round(phase.bound * 1000),
        basis=phase.basis,
        margin_ms=round(margin(phase.bound) * 1000),
        outage_ms=round(outage(requests, acted, until) * 1000),
        failed=len(failures),
        failed_outside=len(outside),
        first_outside=(
            f"+{outside[0]['sent'] - acted:.2f} s to {outside[0]['target']}: {outside[0].get('error', '')}"
            if outside
            else ""
        ),
        vip_moves=vip_moves(requests, acted, until, macs),
        problems=problems,
        start=acted,
        window_end=window_end,
        end=until,
        kind=phase.kind,
    )


def relative(connection: dict, origin: float) -> dict:
    """A held connection's record with its times made relative to origin (the probe's start
    on the host clock, plus the client's clock offset)."""
    moved = {key: connection[key] - origin for key in ("opened", "last_ok", "ended")}
    return {**connection, **moved, "stalls": [[a - origin, b - origin] for a, b in connection["stalls"]]}


def judge_connections(result: PhaseResult, phase: Phase, connections: list[dict]) -> None:
    """Add the held connections' figures, and what contradicts the phase's expectation, to result."""
    bound = established.stall_bound(phase.bound)
    limit = bound + margin(bound)
    held = established.judge(connections, result.start, result.end, limit)
    result.held, result.survived = held.total, held.survived
    result.longest_stall_ms = round(held.longest_stall * 1000)
    result.stall_bound_ms = round(bound * 1000)
    result.established = phase.established
    result.problems += established.problems(held, phase.established, limit)


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
    last requests count as the ends), over gaps that reach into [start, end): what a user
    polling the VIP saw as the service being down."""
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
                longest = max(longest, after - before)
    return longest


def vip_moves(requests: list[dict], start: float, end: float, macs: dict[str, str]) -> list[dict]:
    """When the client's ARP entry for each VIP changed owner, as the client saw it."""
    return _owner_moves(requests, start, end, lambda mac: macs.get(mac, mac or "none"))


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
