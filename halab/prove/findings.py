"""Findings: outages that come from a configuration choice with a known fix.

A verdict says whether a phase stayed within its protocol bound; a finding says that the
bound itself is a choice. Each is computed with the same bound formulas the verdicts use
(halab.prove.bounds), for the lab as it is and as it would be with the fix: the measured
figure, the knob, and the bound the fix gives. The rules:

- a healed split brain without `garp_master_refresh`: the client waits for its ARP entry
  to age (about 50 s); with a refresh the bound is a few seconds (citing what a lab that
  sets it measured, when its failover.json is in the same artifacts tree);
- a real server's failure lasting as long as the health checker's timings (`delay_loop` +
  `connect_timeout` + a retry) say, when shorter ones would cut it;
- `nopreempt` leaving the VIP on the lower-priority director after the MASTER returned;
- a low BACKUP priority, whose VRRP skew the clean stop of the MASTER waits out;
- established connections lost on a director's stop or crash without `lvs_sync_daemon`
  (the new MASTER's IPVS has no entry for them): with it they survive, stalled at most
  twice the takeover bound plus TCP's minimum retransmission timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from halab import paths
from halab.prove import bounds, established, split
from halab.prove.results import DEFAULT_MARGIN, PhaseResult, ScenarioRun
from halab.providers import netfaults
from halab.spec import Lab

# The fixes proposed, and what they give.
GARP_REFRESH = 2  # seconds: what the unicast lab uses
FAST_CHECK = {"delay_loop": 1, "connect_timeout": 1}  # seconds
SKEW_WORTH = 0.1  # seconds of skew a higher BACKUP priority must save to be worth a finding


@dataclass(frozen=True)
class Finding:
    """One phase whose outage a configuration change would shorten."""

    scenario: str
    phase: str
    measured: str  # what the run saw
    knob: str  # the lab file's setting
    fix: str  # the setting that helps
    bound_ms: int  # the bound as configured
    fixed_bound_ms: int  # the bound with the fix
    note: str = ""  # evidence from elsewhere, e.g. a lab that has the fix

    def sentence(self) -> str:
        """The finding in one paragraph, for the text under the table."""
        text = (
            f"{self.scenario} / {self.phase}: {self.measured}, from {self.knob} (bound {self.bound_ms} ms); "
            f"{self.fix} gives a bound of {self.fixed_bound_ms} ms"
        )
        return f"{text}. {self.note}" if self.note else f"{text}."

    def as_dict(self) -> dict:
        return {**asdict(self), "text": self.sentence()}


def of(lab: Lab, runs: list[ScenarioRun], artifacts: Path | None = None) -> list[Finding]:
    """Every finding of a lab's failover runs, in table order. `artifacts`: the labs' artifacts
    tree to cite other labs' runs from (default: this checkout's)."""
    found = []
    for run in runs:
        for phase in run.phases:
            rule = RULES.get(phase.kind)
            if rule:
                found += list(rule(lab, run, phase, artifacts or paths.labs()))
            found += list(_unsynced(lab, run, phase))
            found += list(_split_findings(lab, run, phase))
    return found


def _split_findings(lab: Lab, run: ScenarioRun, phase: PhaseResult) -> Iterator[Finding]:
    """What a network fault's split figures owe to a setting: multicast adverts (a network
    that drops them splits the pair; unicast_peers would not), no garp_master_refresh (the
    client kept the old MAC after the heal), advert_int (spurious takeovers under loss)."""
    for vip, seen in phase.split.items():
        splits = run.scenario == "multicast-dropped" and phase.split_expected == "splits"
        if splits and seen["dual_ms"] and not lab.vrrp.unicast_peers:
            yield Finding(
                run.scenario,
                phase.phase,
                f"{vip}: two MASTERs for {seen['dual_ms']} ms",
                "multicast adverts (no vrrp.unicast_peers): a network that drops 224.0.0.18 splits the pair",
                f"vrrp.unicast_peers: [{', '.join(lab.role('director'))}] (labs/unicast.yaml: no split)",
                phase.split_bound_ms,
                0,
            )
        fixed = bounds.heal(lab, GARP_REFRESH).seconds * 1000
        if run.scenario == "garp-lost":  # counted from the stop: the takeover's bursts came first
            fixed += (bounds.stop(lab).seconds + netfaults.GARP_DELAY) * 1000
        late = seen["arp_ms"] is None or seen["arp_ms"] > fixed
        if phase.split_expected == "rejoins" or run.scenario == "garp-lost":
            if lab.vrrp.garp_master_refresh or not late:
                continue
            took = "to the phase's end" if seen["arp_ms"] is None else f"for {seen['arp_ms']} ms"
            yield Finding(
                run.scenario,
                phase.phase,
                f"{vip}: the client's ARP entry named another director than the holder {took}",
                "no vrrp.garp_master_refresh (nothing announces the VIP again once its gratuitous ARPs are missed)",
                f"vrrp.garp_master_refresh: {GARP_REFRESH}",
                phase.bound_ms,
                round(fixed),
            )
    yield from _spurious(lab, run, phase)


def _spurious(lab: Lab, run: ScenarioRun, phase: PhaseResult) -> Iterator[Finding]:
    """advert-loss: the spurious takeovers measured, against the rate the loss predicts, and
    what doubling advert_int would predict (fewer adverts a minute, each run as likely)."""
    if run.scenario != "advert-loss" or phase.split_expected or not phase.split:
        return
    loss, seconds = phase.loss / 100, phase.loss_seconds
    advert, down = lab.vrrp.advert_int, bounds.down(lab).seconds
    predicted = split.predicted_per_minute(loss, advert, down) * seconds / 60
    doubled = bounds.down(lab.model_copy(update={"vrrp": lab.vrrp.model_copy(update={"advert_int": 2 * advert})}))
    slower = split.predicted_per_minute(loss, 2 * advert, doubled.seconds) * seconds / 60
    per_vrid = {seen["vrid"]: seen for seen in phase.split.values()}  # VIPs of one instance move together
    taken = sum(seen.get("heard_takeovers", 0) for seen in per_vrid.values())
    held = sum(seen["takeovers"] for seen in per_vrid.values())
    yield Finding(
        run.scenario,
        phase.phase,
        f"{taken} spurious takeovers in {seconds:.0f} s at {phase.loss:g} % advert loss, by the BACKUP's "
        f"adverts ({held} seen holding the VIP: the MASTER answers a takeover's first advert at once) "
        f"(predicted {predicted:.1f}: 60 / advert_int x (1 - loss) x loss^k, "
        f"k = {split.adverts_in_down(advert, down)})",
        f"vrrp.advert_int {advert:g}",
        f"vrrp.advert_int: {2 * advert:g} (predicted {slower:.1f} in {seconds:.0f} s, "
        f"detection {doubled.seconds:.2f} s)",
        round(down * 1000),
        round(doubled.seconds * 1000),
    )


def _unsynced(lab: Lab, run: ScenarioRun, phase: PhaseResult) -> Iterator[Finding]:
    if lab.vrrp.lvs_sync_daemon or phase.established != established.LOST or phase.survived == phase.held:
        return
    yield Finding(
        run.scenario,
        phase.phase,
        f"{phase.held - phase.survived} of {phase.held} established connections lost "
        "(the director that took the VIP had no IPVS entry for them: its own TCP stack answers with RST)",
        "no vrrp.lvs_sync_daemon",
        "vrrp.lvs_sync_daemon: true (the BACKUP holds the MASTER's connection table: they survive, "
        "stalled at most twice the takeover bound + 200 ms)",
        phase.bound_ms,
        round(established.stall_bound(phase.bound_ms / 1000) * 1000),
    )


def _split_brain(lab: Lab, run: ScenarioRun, phase: PhaseResult, artifacts: Path) -> Iterator[Finding]:
    if lab.vrrp.garp_master_refresh:
        return
    fixed = bounds.heal(lab, GARP_REFRESH).seconds
    if phase.outage_ms <= (fixed + DEFAULT_MARGIN.of(fixed)) * 1000:
        return
    yield Finding(
        run.scenario,
        phase.phase,
        f"outage {phase.outage_ms} ms while the client's ARP entry still named the other director",
        "no vrrp.garp_master_refresh (the director that stayed MASTER sends no gratuitous ARP)",
        f"vrrp.garp_master_refresh: {GARP_REFRESH}",
        phase.bound_ms,
        round(fixed * 1000),
        _measured_elsewhere(lab.name, artifacts),
    )


def _measured_elsewhere(name: str, artifacts: Path) -> str:
    """What another lab with garp_master_refresh measured on the same phase, if it ran here."""
    for report in sorted(artifacts.glob(f"*/artifacts/{paths.LATEST}/failover.json")):
        data = json.loads(report.read_text())
        refresh = data.get("settings", {}).get("garp_master_refresh")
        if data.get("lab") == name or not refresh:
            continue
        for scenario in data.get("scenarios", []):
            for phase in scenario.get("phases", []):
                if phase.get("kind") == "heal":
                    return (
                        f"Lab {data['lab']!r} (garp_master_refresh {refresh}) measured {phase['outage_ms']} ms "
                        f"on the same repair ({report})."
                    )
    return ""


def _slow_checks(lab: Lab, run: ScenarioRun, phase: PhaseResult, artifacts: Path) -> Iterator[Finding]:
    check = lab.virtual_services[0].health_check
    fixed = bounds.detect(check.model_copy(update=FAST_CHECK)).seconds
    failing = phase.failing_ms / 1000
    if phase.bound_ms <= fixed * 1000 or failing <= fixed:
        return
    yield Finding(
        run.scenario,
        phase.phase,
        f"requests failed for {failing * 1000:.0f} ms ({phase.failed} of them) until IPVS dropped the server",
        f"health_check delay_loop {check.delay_loop} + connect_timeout {check.connect_timeout} "
        f"+ {check.retries} retry x ({check.retry_delay} + {check.connect_timeout})",
        f"health_check delay_loop: {FAST_CHECK['delay_loop']}, connect_timeout: {FAST_CHECK['connect_timeout']}",
        phase.bound_ms,
        round(fixed * 1000),
    )


def _return(lab: Lab, run: ScenarioRun, phase: PhaseResult, artifacts: Path) -> Iterator[Finding]:
    """The MASTER back: with preempt, a second disruption; with nopreempt, the VIP stays put."""
    yield from _preempt(lab, run, phase) if lab.vrrp.preempt else _nopreempt(lab, run, phase)


def _preempt(lab: Lab, run: ScenarioRun, phase: PhaseResult) -> Iterator[Finding]:
    """A preempting MASTER moves the VIP a second time, and what was in flight or held on the
    BACKUP then is cut again: worth saying when the client saw it."""
    lost = phase.held - phase.survived
    if not phase.vip_moves or not (phase.failed or lost):
        return
    master, backup = bounds.pair(lab)
    yield Finding(
        run.scenario,
        phase.phase,
        f"{master}'s return moved the VIP a second time: {phase.failed} requests failed and "
        f"{lost} of {phase.held} held connections were cut",
        "vrrp.preempt: true",
        f"vrrp.preempt: false ({backup} keeps the VIP; no second move, and {master} waits as BACKUP)",
        phase.bound_ms,
        0,
    )


def _nopreempt(lab: Lab, run: ScenarioRun, phase: PhaseResult) -> Iterator[Finding]:
    master, backup = bounds.pair(lab)
    yield Finding(
        run.scenario,
        phase.phase,
        f"the VIP stayed on {backup} (priority {lab.nodes[backup].priority}) after {master} "
        f"(priority {lab.nodes[master].priority}) returned",
        "vrrp.preempt: false",
        f"vrrp.preempt: true ({master} takes the VIP back, at the cost of a second short move)",
        phase.bound_ms,
        round(lab.vrrp.advert_int * 1000),
    )


def _low_backup(lab: Lab, run: ScenarioRun, phase: PhaseResult, artifacts: Path) -> Iterator[Finding]:
    master, backup = bounds.pair(lab)
    priority, ceiling = lab.nodes[backup].priority or 0, (lab.nodes[master].priority or 0) - 1
    now, fixed = bounds.skew(lab, priority), bounds.skew(lab, ceiling)
    if priority >= ceiling or now - fixed < SKEW_WORTH or phase.outage_ms <= fixed * 1000:
        return
    yield Finding(
        run.scenario,
        phase.phase,
        f"outage {phase.outage_ms} ms, of which VRRP skew (256 - {priority}) / 256 is {now * 1000:.0f} ms",
        f"nodes.{backup}.priority {priority}",
        f"nodes.{backup}.priority: {ceiling} (just below {master}'s {ceiling + 1})",
        phase.bound_ms,
        round(fixed * 1000),
    )


RULES = {"heal": _split_brain, "check": _slow_checks, "return": _return, "stop": _low_backup}


def _blind_check(lab: Lab, run: ScenarioRun, phase: PhaseResult, artifacts: Path) -> Iterator[Finding]:
    """A real server hung, answering 500 or late, kept in IPVS by a check that cannot see it:
    HTTP_GET waits connect_timeout for the answer and compares its status, and drops it."""
    check = lab.virtual_services[0].health_check
    if bounds.NOTICED[phase.kind](check) or not phase.failed:
        return
    timeout = min(check.connect_timeout, max(1, int(bounds.SLOW_ANSWER) - 1))
    fixed = check.model_copy(update={"type": "HTTP_GET", "connect_timeout": timeout, "status_code": 200})
    found = bounds.detect(fixed)
    yield Finding(
        run.scenario,
        phase.phase,
        f"{phase.failed} requests failed over {phase.failing_ms} ms while the server stayed in IPVS",
        f"health_check type {check.type}"
        + (f" (connect_timeout {check.connect_timeout} s)" if check.type == "HTTP_GET" else ""),
        f"health_check type: HTTP_GET (path {check.path}, status_code 200) with connect_timeout: {timeout} "
        f"(it bounds the answer too): dropped within {found.basis}",
        phase.bound_ms,
        round(found.seconds * 1000),
    )


# The gray failures' (issue 27): a real server the check cannot see failing.
RULES.update({"hang": _blind_check, "error": _blind_check, "slow": _blind_check})


def settings(lab: Lab) -> dict:
    """The lab's settings the findings read, recorded in failover.json so other labs' findings can cite it."""
    check = lab.virtual_services[0].health_check
    return {
        "garp_master_refresh": lab.vrrp.garp_master_refresh,
        "lvs_sync_daemon": lab.vrrp.lvs_sync_daemon,
        "preempt": lab.vrrp.preempt,
        "advert_int": lab.vrrp.advert_int,
        "delay_loop": check.delay_loop,
        "connect_timeout": check.connect_timeout,
        "priorities": {name: node.priority for name, node in lab.role("director").items()},
    }
