"""The runner: sequences a scenario's phases on a running lab and records what happened.

While a scenario runs, the agent on the client (halab.prove.probe) sends requests to every
VIP at a fixed rate and records each one, and holds keep-alive connections through every
VIP (halab.prove.established). Each phase's action is a fault applied or healed through
the provider; afterwards the runner watches until the client has recovered (or the
failure window closed), reads where the VIPs and IPVS members are (halab.prove.labstate),
and after a heal checks that nothing of the fault remains before the next phase begins.
Judging is halab.prove.verdicts'.
"""

from __future__ import annotations

import functools
import shlex
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from halab import render
from halab.errors import HalabError, ProviderError
from halab.prove import bounds, notify, probe, scenarios, split, verdicts
from halab.prove.labstate import LabState
from halab.prove.results import DEFAULT_MARGIN, Margin, ScenarioRun
from halab.prove.scenarios import Phase, Scenario
from halab.providers.base import Provider

PROBE_RATE = 20.0
PRESENCE_RATE = 20.0  # each director's VIPs sampled this often (split brain)
PROBE_TIMEOUT = 1.0
# Keep-alive connections held per VIP, each sending a request every HOLD_INTERVAL seconds;
# one stalled for HOLD_GIVE_UP seconds is given up (lost) and its slot opens another.
HOLD = 8
HOLD_INTERVAL = 0.1
HOLD_GIVE_UP = 30.0
BASELINE = 2.0
TAIL = 2.0
# A phase ends early once the last RECOVERED seconds of requests all succeeded.
RECOVERED = 2.0
# The client's clock is known to within half an ssh round trip: a request sent this close
# before an action is counted with the action's phase.
CLOCK_SLACK = 0.15


@dataclass
class Done:
    """One phase as it ran, on the host's clock, and what was found after it."""

    phase: Phase
    acted: float
    done: float
    problems: list[str]
    transitions: int | None


@dataclass
class Recording:
    """What the runner gathers while a scenario runs; times on the host's clock until `seen`."""

    step: str = "restore the baseline"  # what is under way: named when it raises
    description: str = ""  # the scenario's, once aimed at the real server the traffic uses
    error: str = ""
    started: float = field(default_factory=time.time)
    offset: float = 0.0  # the client's clock minus the host's
    macs: dict[str, str] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)
    gateway: list[dict] = field(default_factory=list)  # already relative to the probe's start
    directors: dict[str, float] = field(default_factory=dict)  # director -> its clock minus the host's
    notify: list[dict] | None = None  # already relative to the probe's start; None: not recorded
    phases: list[Done] = field(default_factory=list)
    lived: split.Lived = field(default_factory=split.Lived)  # already relative to the probe's start

    def seen(self) -> verdicts.Seen:
        """The observations with their times made relative to the probe's start."""
        origin = self.offset + self.started
        requests = [{**r, "sent": r["sent"] - origin, "done": r["done"] - origin} for r in self.requests]
        connections = [verdicts.relative(c, origin) for c in self.held]
        return verdicts.Seen(requests, connections, self.macs, self.gateway, notify=self.notify, lived=self.lived)

    def marks(self, seen: verdicts.Seen) -> list[verdicts.Mark]:
        """Each phase from its action until the next phase's (the last: until the probe's end)."""
        end = max((r["done"] for r in seen.requests), default=0.0)
        starts = [done.acted - self.started - CLOCK_SLACK for done in self.phases]
        return [
            verdicts.Mark(done.phase, start, done.done - self.started, until, done.problems, done.transitions)
            for done, start, until in zip(self.phases, starts, [*starts[1:], end][: len(starts)], strict=True)
        ]


class Runner:
    """Runs scenarios on a lab that is up, through the provider's fault verbs.

    It reads the lab only from the provider (the lab as run: its NIC names), never from a file.
    """

    def __init__(
        self,
        provider: Provider,
        progress: Callable[[str], None] = print,
        margin: Margin = DEFAULT_MARGIN,
        accept_unexercised: bool = False,
    ) -> None:
        self.provider = provider
        self.accept_unexercised = accept_unexercised
        self.lab = provider.lab
        self.remote = provider.remote
        self.state = LabState(provider)
        self.progress = progress
        self.margin = margin
        self.client = self.lab.client
        self.targets = [f"{vip}:{self.lab.virtual_services[0].port}" for vip in self.lab.vips]

    def run(self, scenario: Scenario) -> ScenarioRun:
        """Measure one scenario. A step that fails (a node that does not boot again) ends it:
        the phases done so far are judged, and the run carries the step and its error."""
        record = Recording()
        try:
            self.restore_baseline()
            record.step = "read the client's clock and the nodes' MACs"
            record.offset = self.remote.clock_offset(self.client)
            record.macs = self.state.read(("macs",)).macs()
            record.directors = {d: self.remote.clock_offset(d) for d in self.lab.role("director")}
            self.progress(f"scenario {scenario.name}: {scenario.description}")
            record.step = "start the probe"
            record.started = time.time()
            self._probed(scenario, record)
        except HalabError as exc:
            record.error = str(exc)
            self.progress(f"  {record.step}: {record.error}")
        seen = record.seen()
        marks, resolution = record.marks(seen), 1 / PROBE_RATE
        results = verdicts.judge_all(scenario.name, marks, seen, self.margin, resolution, self.accept_unexercised)
        return ScenarioRun(
            scenario.name,
            record.description or scenario.description,
            record.started,
            record.offset,
            record.macs,
            seen.requests,
            results,
            seen.connections,
            record.step if record.error else "",
            record.error,
        )

    def _probed(self, scenario: Scenario, record: Recording) -> None:
        """The phases, one after the other, under the probe (and, with NAT, the gateway watcher)."""
        watch = self._watch_gateway()
        directors = self._watch_directors(scenario)
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
            scenario = self._aimed(scenario, http.requests())
            record.description = scenario.description
            for phase in scenario.phases:
                record.step = phase.name
                record.phases.append(self._phase(phase, http, record.offset, record.macs))
                if phase.heals:
                    self._healed(record.phases[-1])
                    self._rewatch(directors, phase)
            record.step = "stop the probe"
        finally:
            record.requests = http.stop()
            record.held = http.connections()
            record.gateway = self._gateway_changes(watch, record.started)
            if notify.recorded(self.lab):
                record.notify = notify.read(self.remote, record.directors, record.started)
            record.lived = self._lived(directors, record.started)

    def _aimed(self, scenario: Scenario, requests: list[dict]) -> Scenario:
        """A real-server scenario whose server answered none of the probe's baseline (with
        persistence the client is pinned to another) aimed at the one that answered most,
        so that its fault meets the traffic; any other scenario as it is."""
        served = Counter(verdicts.server_of(r.get("page", "")) for r in requests if r["ok"])
        served.pop("", None)
        target = scenario.phases[0].fault.node
        if not served or target in served or scenario.phases[0].exercises != "server":
            return scenario
        aimed = scenarios.retarget(self.lab, scenario, served.most_common(1)[0][0])
        self.progress(f"  aimed at {aimed.phases[0].fault.node}, not {target}: the probe's baseline went there")
        return aimed

    def _phase(self, phase: Phase, http: probe.HttpProbe, offset: float, macs: dict[str, str]) -> Done:
        """Act, watch the client recover, then read where things ended up."""
        acted = time.time()
        self.progress(f"  {phase.name} (bound {phase.bound * 1000:.0f} ms: {phase.basis})")
        before = self._transitions() if "transitions" in phase.observe else None
        phase.act(self.provider)
        done = time.time()
        self._observe(http, done, phase, offset, macs)
        problems = self.end_state_problems(phase)
        flaps = self._flaps(before, self._transitions()) if before is not None else None
        return Done(phase, acted, done, problems, flaps)

    def _healed(self, done: Done) -> None:
        """After a heal: nothing of the fault may remain before the next phase (or scenario)
        begins; what remains is the phase's problem, and ends the run."""
        left = done.phase.fault.remains(self.provider)
        if left:
            done.problems.append(f"the fault was not healed: {left}")
            raise ProviderError(f"after '{done.phase.name}': {left}")

    def _observe(self, http: probe.HttpProbe, done: float, phase: Phase, offset: float, macs: dict[str, str]) -> None:
        """Watch the probe after an action: at least settle + TAIL seconds, then until the
        last RECOVERED seconds of (finished) requests all succeeded (after a split heals:
        and went to the MAC of the VIP's holder), at most until the failure window closes."""
        earliest = done + phase.settle + TAIL
        latest = done + max(phase.bound, phase.settle) + self.margin.of(phase.bound) + TAIL
        while time.time() < latest:
            horizon = time.time() - PROBE_TIMEOUT - 0.25  # every request sent before it has finished
            recent = [r for r in http.requests() if horizon - RECOVERED <= r["sent"] - offset <= horizon]
            if (
                time.time() >= earliest
                and horizon - RECOVERED > done
                and len(recent) >= RECOVERED * PROBE_RATE / 2
                and all(r["ok"] for r in recent)
                and (phase.split != "rejoins" or self._on_holder(recent, phase, macs))
            ):
                return
            time.sleep(0.25)

    @staticmethod
    def _on_holder(recent: list[dict], phase: Phase, macs: dict[str, str]) -> bool:
        """Every one of the requests went to the MAC of the director the phase says holds its VIP."""
        return all(macs.get(r["mac"]) == phase.holders.get(r["target"].rsplit(":", 1)[0]) for r in recent)

    # --- split brain: the directors' own view ----------------------------------------

    def _watch_directors(self, scenario: Scenario) -> list[tuple[str, float, subprocess.Popen[str]]]:
        """For a scenario observing split brain: an agent on each director recording its VIPs
        (20 samples a second) and its adverts, with the director's clock offset; else none."""
        if not any("split" in phase.observe for phase in scenario.phases):
            return []
        return [self._watcher(node) for node in self.lab.role("director")]

    def _watcher(self, node: str) -> tuple[str, float, subprocess.Popen[str]]:
        """An agent on the director recording its VIPs' presence and its adverts, with its clock offset."""
        vips = [arg for vip in self.lab.vips for arg in ("--vip", str(vip))]
        args = ["vrrp", *vips, "--iface", self.lab.vrrp.interface, "--rate", str(PRESENCE_RATE)]
        return node, self.remote.clock_offset(node), probe.spawn(self.remote, node, args)

    def _rewatch(self, watches: list[tuple[str, float, subprocess.Popen[str]]], phase: Phase) -> None:
        """A director booted again (a crash healed, in a campaign that observes split brain
        later) lost its watcher with its kernel: start another, with its new clock offset.
        The first one's records until the crash still count (`_lived` salvages them)."""
        node = phase.fault.node
        if phase.fault.primitive == "crash" and any(watched == node for watched, _, _ in watches):
            watches.append(self._watcher(node))

    def _lived(self, watches: list[tuple[str, float, subprocess.Popen[str]]], started: float) -> split.Lived:
        """The directors' agents ended and their records made relative to the probe's start; a
        watcher that ended badly (its node crashed, or it failed) is said so, and what it
        recorded until then is kept (the figures miss the rest, and a phase expecting a split
        then says so)."""
        presence, adverts = [], []
        for node, offset, process in watches:
            records, failed = probe.salvage(process, timeout=15)
            if failed:
                self.progress(f"  the VRRP watcher on {node}: {failed}")
            for r in records:
                at = r["at"] - offset - started
                if "vip" in r:
                    presence.append({"node": node, "vip": r["vip"], "present": r["present"], "at": at})
                elif "src" in r:
                    adverts.append({"node": node, **{k: r[k] for k in ("src", "vrid", "prio", "sent")}, "at": at})
        return split.Lived(presence, adverts, self._vrids()) if watches else split.Lived()

    def _vrids(self) -> dict[str, int]:
        """VIP -> the VRID of the VRRP instance that carries it (as rendered for the lab)."""
        return render.vrids(self.lab, bounds.pair(self.lab)[0])

    # --- NAT: the gateway as a real server sees it -----------------------------------

    def _watch_gateway(self) -> tuple[float, subprocess.Popen[str]] | None:
        """NAT: an agent on the last real server (the real-server scenarios fault the first)
        recording each change of its ARP entry for the gateway (its clock offset read first);
        None for other methods."""
        if self.lab.nat is None:
            return None
        server = list(self.lab.virtual_services[0].real_servers)[-1]
        offset = self.remote.clock_offset(server)
        return offset, probe.spawn(self.remote, server, ["neigh", "--ip", str(self.lab.nat.gateway)])

    @staticmethod
    def _gateway_changes(watch: tuple[float, subprocess.Popen[str]] | None, started: float) -> list[dict]:
        """The watcher's records, ended (finish closes its stdin), times relative to the probe's start."""
        if watch is None:
            return []
        offset, process = watch
        records = probe.finish(process, timeout=15)
        return [{**r, "at": r["at"] - offset - started} for r in records if "mac" in r]

    # --- the lab's state ----------------------------------------------------------------

    def _transitions(self) -> dict[str, int]:
        """Director -> VRRP state changes its keepalived has logged so far (-1: unreadable)."""
        snapshot = self.state.read(("transitions",), timeout=15)
        return {name: snapshot.nodes[name].transitions for name in self.lab.role("director")}

    @staticmethod
    def _flaps(before: dict[str, int], after: dict[str, int]) -> int:
        """State changes between two counts; a log that could not be read counts as one."""
        return sum(1 if -1 in (before.get(d, -1), count) else count - before[d] for d, count in after.items())

    def end_state_problems(self, phase: Phase) -> list[str]:
        """Where the VIPs and the real servers are, against where the phase says they must be."""
        snapshot = self.state.read()
        problems = []
        for vip, director in phase.holders.items():
            held = [node for node in snapshot.holders(vip) if node != phase.stale]
            if held != [director]:
                problems.append(f"VIP {vip} held by {held or 'nobody'}, expected {director}")
        if phase.members:
            members = self.state.members(snapshot)
            for server, present in phase.members.items():
                if members is None or (server in members) != present:
                    problems.append(
                        f"{server} {'missing from' if present else 'still in'} the IPVS table "
                        f"(members: {sorted(members) if members is not None else 'no single VIP holder'})"
                    )
        if phase.table:
            problems += self.state.table_problems(snapshot, phase.table)
        return problems

    def restore_baseline(self, timeout: float = 60.0) -> None:
        """Back to the lab's normal state before a scenario: every VIP on its own MASTER
        (after nopreempt left it elsewhere) and every real server in IPVS."""
        normal = self.lab.masters()
        for vip, director in normal.items():
            for holder in self.state.holders().get(vip, []):
                if holder != director:
                    self.progress(f"  (baseline: moving {vip} back from {holder} to {director})")
                    self.provider.stop_service(holder, "keepalived")
                    self._wait(functools.partial(self._held_by, vip, director), timeout, f"{vip} to move to {director}")
                    self.provider.start_service(holder, "keepalived")
        everyone = set(self.lab.virtual_services[0].real_servers)
        self._wait(
            functools.partial(self._normal, normal, everyone),
            timeout,
            "the VIPs on their MASTERs and every real server in IPVS",
        )
        self._forget_vip_macs()
        self._wait(self._client_reaches_every_vip, timeout, "the client to reach every VIP")

    def _forget_vip_macs(self) -> None:
        """The client forgets each VIP's MAC, so every scenario starts from a client that resolves
        it afresh to the VIP's holder. A MAC learned earlier can name a BACKUP that held the VIP
        once and now forwards to the MASTER (directors route): the client's requests would then
        meet a fault on the MASTER only second-hand, and the phase is not exercised (CI saw it)."""
        nic = shlex.quote(self.lab.vrrp.interface)
        forget = "; ".join(f"ip neigh del {vip} dev {nic} 2>/dev/null" for vip in self.lab.vips)
        self.remote.run(self.client, f"{forget}; true")

    def _normal(self, normal: dict[str, str], everyone: set[str]) -> bool:
        snapshot = self.state.read()
        return all(snapshot.holders(v) == [d] for v, d in normal.items()) and self.state.members(snapshot) == everyone

    def _held_by(self, vip: str, director: str) -> bool:
        return self.state.holders().get(vip) == [director]

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
