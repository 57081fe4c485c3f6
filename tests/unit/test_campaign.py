"""The fault campaign without a lab: the schedule a seed gives, and the invariants judged on
synthetic histories (each must fail where the history breaks one)."""

from __future__ import annotations

import pytest

from halab import paths, spec
from halab.errors import UsageError
from halab.prove import campaign, scenarios, verdicts
from halab.prove.results import DEFAULT_MARGIN, FAIL
from tests.fixtures import probe_record as record

SEED = spec.load(paths.LABS / "seed.yaml")
# A schedule of clean faults whose synthetic history the invariants can judge without a lab.
STEPS = [campaign.Step("link-cut", "server3", 5.0, 0.0), campaign.Step("nginx-stop", "server1", 4.0, 0.0)]


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    first = campaign.plan(SEED, 7, 600)
    assert first == campaign.plan(SEED, 7, 600)
    assert first != campaign.plan(SEED, 8, 600)
    assert campaign.plan_text(SEED, 7, first) == campaign.plan_text(SEED, 7, campaign.plan(SEED, 7, 600))


def test_a_plan_fills_its_duration_and_no_more():
    steps = campaign.plan(SEED, 3, 300)
    total = sum(step.estimate for step in steps)
    assert total >= 300 and total - steps[-1].estimate < 300
    assert all(campaign.GAP[0] <= step.gap <= campaign.GAP[1] for step in steps)
    assert {step.entry for step in campaign.plan(SEED, 3, 3600)} == {entry.name for entry in campaign.entries(SEED)[0]}


def test_nopreempt_leaves_director_faults_out_and_says_why():
    unicast = spec.load(paths.LABS / "unicast.yaml")
    usable, left_out = campaign.entries(unicast)
    assert all(entry.target == "server" for entry in usable)
    assert left_out and all("nopreempt" in reason for reason in left_out)
    assert "left out: director-crash" in campaign.plan_text(unicast, 1, campaign.plan(unicast, 1, 60))


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("3m", 180), ("1h", 3600)])
def test_durations(text, seconds):
    assert campaign.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-3m", "3 m", "3d", "25h", "1e3", "3m\n"])
def test_bad_durations_are_refused_in_one_line(text):
    with pytest.raises(UsageError, match="--duration"):
        campaign.duration(text)


@pytest.mark.parametrize("value", [-1, campaign.SEED_LIMIT])
def test_seeds_outside_the_range_are_refused(value):
    with pytest.raises(UsageError, match="--seed"):
        campaign.seed(value)


def test_the_schedule_is_one_scenario_with_a_quiet_phase_after_each_step():
    steps = campaign.plan(SEED, 7, 200)
    run = campaign.scenario(SEED, 7, steps)
    quiet = [phase for phase in run.phases if phase.kind == "quiet"]
    assert len(quiet) == len(steps) and run.name == "chaos-7"
    assert [phase.fault.seconds for phase in quiet] == [step.gap for step in steps]
    assert run.remake is not None and run.remake(SEED).phases == run.phases


def _history(run, broken: str) -> tuple[list[verdicts.Mark], verdicts.Seen]:
    """Marks per phase, 20 requests a second, all answered except where `broken` says:
    "quiet" fails requests for 3 s of the first quiet gap (past the 2 s margin), "flap" has a
    VRRP transition in it, "slow" keeps the first fault's outage past its bound and margin."""
    marks, requests, at = [], [], 0.0
    first_quiet = next(i for i, p in enumerate(run.phases) if p.kind == "quiet")
    for index, phase in enumerate(run.phases):
        length = 3 * (phase.bound + DEFAULT_MARGIN.of(phase.bound)) + 4 if index == 0 else 6.0
        flaps = (1 if broken == "flap" and index == first_quiet else 0) if phase.kind == "quiet" else None
        marks.append(verdicts.Mark(phase, at, at + 0.1, at + length, [], flaps))
        for tick in range(int(length * 20)):
            sent = at + tick / 20
            failing = (broken == "quiet" and index == first_quiet and 1.0 <= sent - at <= 4.0) or (
                broken == "slow" and index == 0 and sent - at <= length - 2
            )
            requests.append(record(sent, not failing))
        at += length
    return marks, verdicts.Seen(requests, macs={})


@pytest.mark.parametrize("broken", ["quiet", "flap", "slow"])
def test_a_history_that_breaks_an_invariant_fails_the_campaign(broken):
    run = campaign.scenario(SEED, 7, STEPS)
    marks, seen = _history(run, broken)
    results = verdicts.judge_all(run.name, marks, seen, DEFAULT_MARGIN, 0.05, accept=True)
    failed = [result for result in results if result.verdict == FAIL]
    assert failed, [(r.phase, r.verdict) for r in results]
    marks, seen = _history(run, "")
    assert all(r.verdict != FAIL for r in verdicts.judge_all(run.name, marks, seen, DEFAULT_MARGIN, 0.05, accept=True))


def test_a_request_in_flight_when_the_next_fault_hits_is_charged_to_that_fault():
    """Sent 0.2 s before a crash, timed out 0.8 s after it: the crash's failure, not the gap's."""
    run = campaign.scenario(SEED, 7, STEPS)
    gap, fault = run.phases[2], run.phases[3]
    requests = [record(t / 20, True) for t in range(196)] + [record(9.8, False, latency=1.0)]
    requests += [record(10.0 + t / 20, True) for t in range(100)]
    seen = verdicts.Seen(requests, macs={})
    quiet = verdicts.judge("c", verdicts.Mark(gap, 0.0, 0.1, 10.0, [], 0), seen, DEFAULT_MARGIN)
    crash = verdicts.judge("c", verdicts.Mark(fault, 10.0, 10.1, 15.0), seen, DEFAULT_MARGIN)
    assert (quiet.failed, crash.failed) == (0, 1)


def test_overlaps_come_from_a_stream_of_their_own_and_leave_the_seeds_choices_alone(monkeypatch):
    overlapped = campaign.plan(SEED, 4, 600)
    assert [step.held for step in overlapped if step.held]  # seed 4 holds a real server down
    monkeypatch.setattr(campaign, "OVERLAP", 0.0)
    alone = campaign.plan(SEED, 4, 600)
    assert not any(step.held for step in alone)
    mine = [(step.entry, step.target, step.gap) for step in overlapped]
    assert mine == [(step.entry, step.target, step.gap) for step in alone][: len(mine)]


def test_a_director_fault_beside_a_down_real_server_expects_it_out_throughout():
    step = campaign.Step("keepalived-stop", "server3", 5.0, 0.0, "nginx-stop", "server2")
    assert step.words() == "keepalived-stop on server3 while nginx-stop holds on server2, then 5 s quiet"
    phases = campaign.scenario(SEED, 1, [step]).phases
    assert [phase.fault.primitive for phase in phases] == ["service"] * 4 + ["wait"]
    assert [(phase.fault.node, phase.heals) for phase in phases[:4]] == [
        ("server2", False),
        ("server3", False),
        ("server3", True),
        ("server2", True),
    ]
    down, stop, start = phases[:3]
    for during in (stop, start):
        assert during.members["server2"] is False and "server2" not in during.table
    # keepalived started again checks every real server anew: only that phase allows the check's bound
    assert start.bound >= down.bound and start.settle >= down.bound and "server2's check anew" in start.basis
    assert stop.bound < down.bound and "check anew" not in stop.basis
    cut = campaign.scenario(SEED, 1, [campaign.Step("link-cut", "server3", 5.0, 0.0, "nginx-stop", "server2")])
    assert not any("check anew" in phase.basis for phase in cut.phases)  # its keepalived never stopped


@pytest.mark.parametrize("lab", ["persistent.yaml"])
def test_no_overlap_where_the_client_may_be_pinned_to_the_failed_server(lab):
    pinned = spec.load(paths.LABS / lab)
    assert scenarios.overlaps(pinned) == ([], [])
    assert not any(step.held for seed in range(10) for step in campaign.plan(pinned, seed, 600))
