"""The fault catalogue: each scenario is data, a fault applied to a node and later healed.

An entry names its fault (a primitive of halab.providers.faults and a target: the first
VIP's MASTER, or the first real server) and, for each of its two phases, what the phase
expects: its bound and how long the end state may take (formulas named in
halab.prove.bounds), where the VIPs must end up, whether the real server must be in IPVS,
what happens to held connections and to persistence, and what else must be observed.
`scenarios(lab)` turns the entries into phases with this lab's nodes and numbers; adding
a scenario is adding an entry (and, if its fault is new, one primitive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from halab.errors import UsageError
from halab.prove import bounds, established
from halab.providers import netfaults
from halab.providers.base import Provider
from halab.providers.faults import Fault
from halab.spec import Lab

# The idle soak: probing with no fault, this long.
IDLE = 60.0

# Where the VIPs must be after a phase: as the lab file places them, all on the BACKUP, or
# after the MASTER's return (preempt: back on the MASTER; nopreempt: still on the BACKUP);
# "any": not judged by place (a split brain, or random loss): the split figures judge it.
HOLDERS = ("normal", "failed-over", "returned", "any")
# Observations a phase may need beyond the probe's: VRRP transitions counted on the directors;
# split: each director's VIPs sampled 20 times a second and its adverts (halab.prove.split).
OBSERVATIONS = ("transitions", "split")
# What the probe's traffic must meet for a phase to be judged at all (Phase.exercises): the
# faulted director holding the VIP the client uses, or the faulted real server serving it;
# a fault on the BACKUP meets no request (the split figures are what it is judged on).
EXERCISES = {"master": "vip", "server": "server", "backup": ""}
# What a phase expects of split brain (Expect.split, Phase.split): two MASTERs within the
# detection bound ("splits"), none ("holds"), one MASTER again within one advert and the
# client's ARP on it within the phase's bound ("rejoins"), or, for "multicast", "holds" on a
# lab whose adverts are unicast and "splits" on one whose are multicast.
SPLITS = ("splits", "holds", "rejoins", "multicast")


@dataclass(frozen=True)
class Expect:
    """What one phase of an entry expects, by name: resolved against a lab by `scenarios`."""

    bound: str  # a bounds.FORMULAS name
    holders: str  # one of HOLDERS
    settle: str = ""  # a bounds.FORMULAS name: how long after the action the end state may take
    member: bool | None = None  # the target real server must (not) be in IPVS afterwards
    connections: bool = False  # judge the held connections (a director's stop or crash)
    sticky: str = ""  # persistence judged: "" never, "in-place" VIP stays, "across" VIP moves
    observe: tuple[str, ...] = ()  # OBSERVATIONS
    stale: bool = False  # the faulted director may still hold the VIP (frozen, it cannot drop it)
    gray: str = ""  # a key of bounds.NOTICED: the server is dropped if the lab's check sees that fault
    table: str = ""  # the IPVS table afterwards must equal TABLES[table] (members and weights), "" not judged
    split: str = ""  # SPLITS, "" not judged


@dataclass(frozen=True)
class Entry:
    """One scenario of the catalogue: a fault on a target, its two phases' expectations."""

    name: str
    description: str  # "{node}" is the target's name
    primitive: str
    target: str  # "master" (of the first VIP) or "server" (the first service's first real server)
    on_fault: Expect
    on_heal: Expect | None
    service: str = ""
    seconds: float = 0.0  # the fault's (a flap's half period, a loss window)
    amount: float = 0.0  # the fault's size (a loss percentage, a number of flaps)
    ci: tuple[str, ...] = ()  # network faults: the shipped labs the suite (CI) runs it on


CATALOGUE = (
    Entry(
        "keepalived-stop",
        "keepalived stopped cleanly on the MASTER {node}, then started",
        "service",
        "master",
        Expect("stop", "failed-over", connections=True, sticky="across"),
        Expect("return", "returned", settle="failback"),
        service="keepalived",
    ),
    Entry(
        "director-crash",
        "the MASTER {node} crashes (kernel killed), then boots again",
        "crash",
        "master",
        Expect("down", "failed-over", connections=True, sticky="across"),
        Expect("return", "returned", settle="failback"),
    ),
    Entry(
        "link-cut",
        "the MASTER {node}'s link to the lab switch is cut, then restored",
        "link",
        "master",
        Expect("down", "failed-over"),
        # Two MASTERs after a cut heals: the lower priority steps down whatever nopreempt says.
        Expect("heal", "normal", settle="down"),
    ),
    Entry(
        "nginx-stop",
        "nginx stopped on the real server {node}, then started",
        "service",
        "server",
        Expect("check", "normal", settle="check", member=False),
        Expect("rejoin", "normal", settle="recheck", member=True),
        service="nginx",
    ),
    Entry(
        "realserver-crash",
        "the real server {node} crashes, then boots again",
        "crash",
        "server",
        Expect("check", "normal", settle="check", member=False),
        Expect("rejoin", "normal", settle="recheck", member=True),
    ),
)


# Gray failures (issue 27): a node half broken rather than gone. Run on request (`--scenario
# NAME`, or `--scenario gray` for all of them), not with the catalogue above.
GRAY = (
    Entry(
        "director-pause",
        "keepalived on the MASTER {node} frozen (SIGSTOP) for several master-down intervals, then resumed",
        "pause",
        "master",
        Expect("down", "failed-over", settle="paused", stale=True, observe=("transitions",)),
        Expect("resume", "normal", settle="resume", observe=("transitions",)),
        service="keepalived",
    ),
    Entry(
        "reload",
        "keepalived on the MASTER {node} reloaded (SIGHUP) under load, its configuration unchanged",
        "reload",
        "master",
        Expect("reload", "normal", table="file", observe=("transitions",)),
        None,
    ),
    Entry(
        "reload-weight",
        "keepalived on the MASTER {node} reloaded under load with the first real server's weight changed, "
        "then reloaded as rendered",
        "reweight",
        "master",
        Expect("reload", "normal", table="reweighted", observe=("transitions",)),
        Expect("reload", "normal", table="file", observe=("transitions",)),
    ),
    Entry(
        "vip-deleted",
        "the VIP deleted from the MASTER {node} by another program (ip addr del)",
        "vip-deleted",
        "master",
        Expect("reinstate", "normal", settle="reinstate", observe=("transitions",)),
        None,
    ),
    Entry(
        "failback",
        "the MASTER {node} crashes and returns: preempt takes the VIP back (after preempt_delay), "
        "nopreempt leaves it on the BACKUP",
        "crash",
        "master",
        Expect("down", "failed-over"),
        Expect("return", "returned", settle="failback", observe=("transitions",)),
    ),
    Entry(
        "realserver-hang",
        "nginx on the real server {node} frozen (SIGSTOP): the kernel still completes TCP handshakes",
        "pause",
        "server",
        Expect("hang", "normal", settle="hang", gray="hang"),
        Expect("rejoin", "normal", settle="recheck", member=True),
        service="nginx",
    ),
    Entry(
        "realserver-error",
        "nginx on the real server {node} answers 500 to every request",
        "realserver-error",
        "server",
        Expect("error", "normal", settle="error", gray="error"),
        Expect("rejoin", "normal", settle="recheck", member=True),
    ),
    Entry(
        "realserver-slow",
        "nginx on the real server {node} answers every request late (past the client's timeout)",
        "realserver-slow",
        "server",
        Expect("slow", "normal", settle="slow", gray="slow"),
        Expect("rejoin", "normal", settle="recheck", member=True),
    ),
)
# What the IPVS table must hold after a phase: the lab file's real servers and weights, or
# those with the first real server's weight + 1 (the reweight fault's change).
TABLES = ("file", "reweighted")
# The name that runs every gray scenario.
GRAY_GROUP = "gray"


# The network faults operators hit (halab.providers.netfaults): split brain and its heal.
# On request (`--scenario NAME`), not with the clean faults; CI runs two of them (`ci`):
# a partition on the seed lab, and dropped multicast on the unicast lab, which must not
# split (the proof that unicast_peer is the setting that matters).
SPLIT = ("split",)
REJOIN = Expect("heal", "normal", settle="down", observe=SPLIT, split="rejoins")
# The fault's phase of a split: both directors MASTER within the BACKUP's master-down timer.
SPLITTING = Expect("down", "any", settle="down", observe=SPLIT, split="splits")
NETWORK = (
    Entry(
        "director-partition",
        "the directors cannot hear each other ({node} and its peer drop each other's packets); clients "
        "and real servers reach both; then the partition ends",
        "director-partition",
        "master",
        SPLITTING,
        REJOIN,
        ci=("seed",),
    ),
    Entry(
        "vrrp-blocked",
        "{node}'s firewall drops incoming VRRP (IP protocol 112), as an operator's rules do; then it is lifted",
        "vrrp-blocked",
        "backup",
        SPLITTING,
        REJOIN,
    ),
    Entry(
        "multicast-dropped",
        "the lab switch drops multicast to 224.0.0.18 (VRRP's group); then it carries it again",
        "multicast-dropped",
        "master",
        Expect("down", "any", settle="down", observe=SPLIT, split="multicast"),
        REJOIN,
        ci=("unicast",),
    ),
    Entry(
        "one-way",
        "the lab switch drops {node}'s adverts towards its peer only; the reverse path works; then it heals",
        "one-way",
        "master",
        SPLITTING,
        REJOIN,
    ),
    Entry(
        "advert-loss",
        "{node} loses a share of its VRRP adverts (netem) for a while: spurious takeovers, measured "
        "against what the loss predicts; then the loss ends",
        "advert-loss",
        "master",
        Expect("down", "any", observe=SPLIT),
        REJOIN,
        seconds=30.0,
        amount=50.0,
    ),
    Entry(
        "link-flap",
        "{node}'s link goes down and up several times, each time long enough for a takeover",
        "link-flap",
        "master",
        # Judged from the client alone: the director's own watcher talks over the link that flaps.
        Expect("flaps", "normal", settle="down"),
        Expect("heal", "normal", settle="down"),
        amount=netfaults.FLAPS,
    ),
    Entry(
        "garp-lost",
        "the gratuitous ARPs of a takeover do not reach the client, and keepalived stops cleanly on the "
        "MASTER {node}: how long the client's requests go to the old MAC; then it starts again",
        "garp-lost",
        "master",
        # The client learns the new holder only when its ARP entry ages out (or a refresh).
        Expect("garp-lost", "failed-over", settle="stop", observe=SPLIT),
        Expect("return", "returned", settle="down"),
    ),
)
# What the image pipeline runs of them on VMs (test.pipeline --lab, not --quick): the faults
# made inside the nodes, with the nodes' own firewalls.
ON_VMS = ("director-partition", "vrrp-blocked")


@dataclass(frozen=True)
class Phase:
    """One action on the lab (a fault applied or healed), what it may cost the client, and
    where things must end up."""

    name: str
    fault: Fault
    heals: bool  # False: the action applies the fault; True: it heals it
    bound: float
    basis: str
    holders: dict[str, str]  # VIP -> director that must hold it afterwards
    members: dict[str, bool] = field(default_factory=dict)  # real server -> must be in IPVS
    settle: float = 0.0  # how long after the action the end state may take
    split: str = ""  # a value of SPLITS resolved for the lab ("multicast" never), "" not judged
    split_bound: float = 0.0  # "splits": the detection bound; "rejoins": one MASTER again
    splitting: tuple[str, ...] = ()  # "splits": the VIPs whose BACKUP no longer hears their MASTER
    kind: str = ""  # which bound it is (a bounds.FORMULAS name): what the findings read
    established: str = ""  # what must happen to the held connections (established.KEPT/LOST), "" not judged
    sticky: bool = False  # persistence: every request of the phase answered by one real server
    observe: tuple[str, ...] = ()  # OBSERVATIONS this phase needs
    exercises: str = ""  # a value of EXERCISES: what the traffic must meet, "" nothing (idle)
    stale: str = ""  # a director that may still hold the VIPs (frozen): not counted as a holder
    lasting: bool = False  # the check cannot see the fault: requests fail until the heal, none outside
    table: dict[str, int] = field(default_factory=dict)  # real server -> its IPVS weight afterwards; {} not judged

    def act(self, provider: Provider) -> None:
        (self.fault.heal if self.heals else self.fault.apply)(provider)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    phases: tuple[Phase, ...]
    # How to make it again with another lab's numbers (a campaign's schedule); None: by its
    # catalogue entry's name (see `rebuilt`).
    remake: Callable[[Lab], Scenario] | None = field(default=None, compare=False)


def scenarios(lab: Lab) -> list[Scenario]:
    """Every scenario of the catalogue on this lab, in the order they run."""
    return [scenario(lab, entry) for entry in CATALOGUE]


def quick(lab: Lab) -> list[Scenario]:
    """The first scenario of each fault primitive (service, crash, link): every way a provider
    injects a fault, once. The rest repeat a mechanism on another node, which the local lab's
    suite runs in full (the image pipeline in CI runs this form)."""
    first = {entry.primitive: entry for entry in reversed(CATALOGUE)}
    return [scenario(lab, entry) for entry in CATALOGUE if first[entry.primitive] is entry]


def rebuilt(lab: Lab, chosen: list[Scenario]) -> list[Scenario]:
    """The same scenarios, on the same targets, with this lab's numbers (keepalived's own
    check timings, say, where they differ from the file's)."""
    entries = {entry.name: entry for entry in (*CATALOGUE, *GRAY, *NETWORK)}
    return [
        s.remake(lab)
        if s.remake
        else scenario(lab, entries[s.name], s.phases[0].fault.node)
        if s.name in entries
        else soak(lab, s.phases[0].fault.seconds)
        for s in chosen
    ]


def soak(lab: Lab, seconds: float = IDLE) -> Scenario:
    """Probing with no fault: run on request (`--scenario idle`), not with the faults. Short
    adverts must not make VRRP flap: no state transition and no failed request."""
    words = f"no fault for {seconds:g} s: no VRRP transition, no failed request"
    return Scenario("idle", words, (quiet(lab, seconds, "idle"),))


def quiet(lab: Lab, seconds: float, kind: str = "quiet") -> Phase:
    """A phase with no fault: every VIP on its MASTER and no VRRP transition. As the idle soak
    (kind "idle") not one request may fail; as a campaign's gap between faults ("quiet") a
    blip within the margin is noise, as in any other phase."""
    expect = Expect(kind, "normal", sticky="in-place", observe=("transitions",))
    return _phase(lab, Fault("wait", seconds=seconds), False, expect, {})


def scenario(lab: Lab, entry: Entry, target: str = "") -> Scenario:
    """One entry with this lab's nodes and numbers, on target (default: the entry's own)."""
    target = target or _target(lab, entry.target)
    fault = Fault(entry.primitive, target, entry.service, _seconds(lab, entry), entry.amount)
    exercises = EXERCISES[entry.target]
    phases = [_phase(lab, fault, False, entry.on_fault, {"server": target}, exercises)]
    if entry.on_heal is not None:
        phases.append(_phase(lab, fault, True, entry.on_heal, {"server": target}, exercises))
    return Scenario(entry.name, entry.description.format(node=target), tuple(phases))


def beside(held: Scenario, during: Scenario) -> Scenario:
    """`during` (a director's fault and heal) while `held` (a real server's fault that its check
    notices) holds: held's fault, during's phases, held's heal.

    Both directors' checkers drop the failed server during held's fault, so a takeover serves
    without it: each of during's phases expects the server out of IPVS. A director whose
    keepalived starts again (a stop's or a crash's heal) checks every real server anew, each
    starting up (keepalived's default; `alpha` in a check starts it down), so the MASTER that
    returns may send requests to the failed server until its first checks fail: that phase
    allows held's check bound as well as its own."""
    down, heal = held.phases
    server = down.fault.node
    phases = []
    for phase in during.phases:
        out = replace(
            phase,
            members={**phase.members, server: False},
            table={name: weight for name, weight in phase.table.items() if name != server},
        )
        if phase.heals and phase.fault.primitive in RESTARTS:  # keepalived started again
            out = replace(
                out,
                bound=max(phase.bound, down.bound),
                basis=f"max({phase.basis}; {server}'s check anew: {down.basis})",
                settle=max(phase.settle, down.bound),
            )
        phases.append(out)
    return Scenario(
        f"{during.name}+{held.name}",
        f"{during.description}, while {held.description}",
        (down, *phases, heal),
    )


# The director faults whose heal starts keepalived again (and with it every check).
RESTARTS = ("service", "crash")


def overlaps(lab: Lab) -> tuple[list[Entry], list[Entry]]:
    """The director entries a real-server fault may be held beside, and those real-server
    entries: a clean director fault and heal; a server fault its check notices. None when the
    lab has one real server (its fault is the whole service) or persistence (the client may
    be pinned to the failed server, and no phase then sees the director fault)."""
    service = lab.virtual_services[0]
    if len(service.real_servers) < 2 or service.persistence_timeout:
        return [], []
    directors = [e for e in CATALOGUE if e.target == "master" and e.primitive in ("service", "crash", "link")]
    servers = [e for e in CATALOGUE if e.target == "server" and e.on_fault.member is False]
    return directors, servers


def retarget(lab: Lab, run: Scenario, server: str) -> Scenario:
    """A real-server scenario aimed at server instead: the one the probe's traffic is using
    (with persistence, the client is pinned to one server, and a fault on another would
    never meet its requests). Any other scenario comes back unchanged."""
    entry = next((e for e in (*CATALOGUE, *GRAY) if e.name == run.name), None)
    if entry is None or entry.target != "server" or server not in lab.virtual_services[0].real_servers:
        return run
    return scenario(lab, entry, server)


def network(lab: Lab) -> list[Scenario]:
    """Every network fault of the catalogue on this lab (run on request, or by name)."""
    return [scenario(lab, entry) for entry in NETWORK]


def on_vms(lab: Lab) -> list[Scenario]:
    """The network faults the image pipeline's full run adds on VMs (ON_VMS)."""
    return [scenario(lab, entry) for entry in NETWORK if entry.name in ON_VMS]


def in_ci(lab_name: str) -> list[str]:
    """The network faults the suite runs on a shipped lab (by its file's name)."""
    return [entry.name for entry in NETWORK if lab_name in entry.ci]


def _seconds(lab: Lab, entry: Entry) -> float:
    """A flap's half period: the master-down timer and one second more, so each cut is a
    takeover and each restore a return; how long gratuitous ARPs are dropped: the takeover
    and its second burst, and one second more; any other entry's own."""
    if entry.primitive == "link-flap":
        return bounds.down(lab).seconds + 1
    if entry.primitive == "garp-lost":
        return bounds.stop(lab).seconds + netfaults.GARP_DELAY + 1
    return entry.seconds


def _target(lab: Lab, target: str) -> str:
    if target == "master":
        return bounds.pair(lab)[0]
    if target == "backup":
        return bounds.pair(lab)[1]
    return next(iter(lab.virtual_services[0].real_servers))


def _phase(lab: Lab, fault: Fault, heals: bool, expect: Expect, named: dict[str, str], exercises: str = "") -> Phase:
    bound = bounds.of(lab, expect.bound)
    member = expect.member
    noticed = bounds.NOTICED[expect.gray](lab.virtual_services[0].health_check) if expect.gray else None
    if noticed is not None:
        member = not noticed  # dropped if the check sees the fault; kept, and failing, if not
    members = {named["server"]: member} if member is not None else {}
    return Phase(
        fault.healed if heals else fault.applied,
        fault,
        heals,
        bound.seconds,
        bound.basis,
        holders(lab, expect.holders),
        members,
        settle=bounds.of(lab, expect.settle).seconds,
        split=_split(lab, expect.split),
        split_bound=_split_bound(lab, _split(lab, expect.split)),
        splitting=_splitting(lab, fault) if _split(lab, expect.split) == "splits" else (),
        kind=expect.bound,
        established=_outcome(lab) if expect.connections else "",
        sticky=bool(expect.sticky) and sticky(lab, moves=expect.sticky == "across"),
        observe=expect.observe,
        exercises=exercises,
        stale=fault.node if expect.stale else "",
        lasting=noticed is False,
        table=weights(lab, expect.table),
    )


def weights(lab: Lab, table: str) -> dict[str, int]:
    """Real server -> the weight IPVS must give it: `table` is one of TABLES, or "" (none)."""
    if not table:
        return {}
    configured = {name: real.weight for name, real in lab.virtual_services[0].real_servers.items()}
    if table == "reweighted":
        first = next(iter(configured))
        configured[first] += 1
    return configured


def _split(lab: Lab, expected: str) -> str:
    """A SPLITS value for this lab: "multicast" splits a lab whose adverts are multicast only."""
    if expected == "multicast":
        return "holds" if lab.vrrp.unicast_peers else "splits"
    return expected


# Who stops hearing VRRP in a one-sided fault: the target itself (its firewall), or its peer
# (the target's adverts towards it dropped). Any other fault cuts both directions.
DEAF = {"vrrp-blocked": "target", "one-way": "peer"}


def _splitting(lab: Lab, fault: Fault) -> tuple[str, ...]:
    """The VIPs a fault splits: all when neither director hears the other; else those whose
    BACKUP is the deaf director (in an active-active lab, the other VIP's MASTER is deaf, and
    its BACKUP still hears it: that VIP does not split)."""
    deaf = DEAF.get(fault.primitive)
    if deaf is None:
        return tuple(lab.masters())
    node = fault.node if deaf == "target" else next(d for d in lab.role("director") if d != fault.node)
    return tuple(vip for vip, master in lab.masters().items() if master != node)


def _split_bound(lab: Lab, split: str) -> float:
    """Detection (the BACKUP's master-down timer) for a split, one advert for a rejoin."""
    return {"splits": bounds.down(lab).seconds, "rejoins": lab.vrrp.advert_int}.get(split, 0.0)


def holders(lab: Lab, which: str) -> dict[str, str]:
    """VIP -> the director that must hold it: `which` is one of HOLDERS ("any": {})."""
    if which == "any":
        return {}
    normal = lab.masters()
    backup = bounds.pair(lab)[1]
    failed_over = {vip: backup for vip in normal}
    return {
        "normal": normal,
        "failed-over": failed_over,
        "returned": normal if lab.vrrp.preempt else failed_over,
    }[which]


def _outcome(lab: Lab) -> str:
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
    return "; ".join(word for word in [*words, split_expectation(phase)] if word)


def split_expectation(phase: Phase) -> str:
    """The phase's expectation of split brain, in words, with its bound."""
    bound = f"{phase.split_bound * 1000:.0f} ms"
    return {
        "splits": f"both directors MASTER within the BACKUP's master-down timer ({bound}): VRRP cannot "
        "prevent it, so the verdict is on bounded detection and the clean recovery after",
        "holds": "never two MASTERs",
        "rejoins": f"one MASTER within one advert ({bound}), and the client's ARP entry on it within the bound",
    }.get(phase.split, "")


def held_expectation(phase: Phase) -> str:
    """The phase's expectation for its held connections, in words."""
    if phase.established == established.KEPT:
        limit = established.stall_bound(phase.bound)
        return f"established connections kept (lvs_sync_daemon), stall bound {limit * 1000:.0f} ms"
    if phase.established == established.LOST:
        return "established connections lost (no lvs_sync_daemon: the new MASTER answers them with RST)"
    return ""


def gray(lab: Lab) -> list[Scenario]:
    """Every gray-failure scenario on this lab (run on request)."""
    return [scenario(lab, entry) for entry in GRAY]


def on_request(lab: Lab) -> list[Scenario]:
    """What runs only when named: the idle soak, the network faults, the gray failures."""
    return [soak(lab), *network(lab), *gray(lab)]


def chosen(lab: Lab, names: str) -> list[Scenario]:
    """The scenarios named (comma-separated; `idle`, the network faults, gray ones and `gray`
    for all of them too), or the clean faults' catalogue when none is."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if GRAY_GROUP in wanted:
        wanted = [name for name in wanted if name != GRAY_GROUP] + [entry.name for entry in GRAY]
    every = [*scenarios(lab), *on_request(lab)]
    unknown = [name for name in wanted if name not in {s.name for s in every}]
    if unknown:
        known = [s.name for s in every] + [GRAY_GROUP]
        raise UsageError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(known)}")
    return [s for s in every if s.name in wanted] if wanted else scenarios(lab)
