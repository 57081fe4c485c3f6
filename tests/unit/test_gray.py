"""The gray-failure scenarios without a lab: their bounds from the lab file, what they expect
of the check, their verdicts on synthetic timelines, the finding that names HTTP_GET, and the
end-state reads they add (a frozen director's stale VIP, the IPVS table against the file)."""

from __future__ import annotations

import pytest

from halab import paths, spec
from halab.errors import UsageError
from halab.prove import bounds, findings, scenarios, verdicts
from halab.prove.labstate import LabState
from halab.prove.results import FAIL, WITHIN, Margin, ScenarioRun
from halab.prove.runner import Runner
from tests.fixtures import probe_record as record

SEED = (paths.LABS / "seed.yaml").read_text()


def _lab(*replacements: tuple[str, str]) -> spec.Lab:
    text = SEED
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return spec.parse(text)


HTTP_GET = ("type: TCP_CHECK ", "type: HTTP_GET ")


def _phases(lab: spec.Lab, name: str) -> list[scenarios.Phase]:
    return list(next(s for s in scenarios.chosen(lab, name)).phases)


def test_gray_scenarios_run_on_request_only_and_gray_names_them_all():
    lab = spec.load()
    assert [s.name for s in scenarios.chosen(lab, "")] == [e.name for e in scenarios.CATALOGUE]
    assert [s.name for s in scenarios.chosen(lab, "gray")] == [e.name for e in scenarios.GRAY]
    assert [s.name for s in scenarios.chosen(lab, "reload,idle")] == ["idle", "reload"]
    with pytest.raises(UsageError, match=r"known: .*director-pause.*, gray$"):
        scenarios.chosen(lab, "freeze")


def test_a_tcp_check_keeps_a_hung_server_and_http_get_drops_it_within_its_bound():
    (hang, _) = _phases(spec.load(), "realserver-hang")
    assert hang.members == {"server1": True} and hang.lasting
    assert hang.bound == bounds.GRAY_HOLD and "TCP_CHECK completes the TCP handshake" in hang.basis
    (hang, resume) = _phases(_lab(HTTP_GET), "realserver-hang")
    assert hang.members == {"server1": False} and not hang.lasting
    # delay_loop 3 + connect_timeout 3 + 1 retry x (HTTP_GET's 3 s delay_before_retry + 3)
    assert hang.bound == 12 and resume.members == {"server1": True}


def test_a_slow_server_is_seen_only_by_an_http_get_that_does_not_wait_as_long():
    (slow, _) = _phases(_lab(HTTP_GET), "realserver-slow")
    assert slow.members == {"server1": False}
    patient = _lab(HTTP_GET, ("connect_timeout: 3\n", "connect_timeout: 6\n"))
    (slow, _) = _phases(patient, "realserver-slow")
    assert slow.members == {"server1": True} and slow.lasting


def test_the_director_scenarios_bounds_come_from_the_lab_file():
    lab = spec.load()
    pause, resume = _phases(lab, "director-pause")
    assert pause.stale == "server3" and pause.holders == {"172.25.1.100": "server4"}
    assert pause.settle == pytest.approx(3 * (3 + 206 / 256))  # several master-down intervals
    assert resume.bound == 1.0 and resume.holders == {"172.25.1.100": "server3"} and not resume.stale
    (deleted,) = _phases(lab, "vip-deleted")
    assert deleted.bound == pytest.approx(156 / 256 + 1)  # the MASTER's own skew + one advert
    (reload,) = _phases(lab, "reload")
    assert reload.bound == 0 and reload.table == {"server1": 1, "server2": 1} and reload.observe == ("transitions",)
    changed, back = _phases(lab, "reload-weight")
    assert (changed.table, back.table) == ({"server1": 2, "server2": 1}, {"server1": 1, "server2": 1})
    assert changed.fault.applied == "reload keepalived on server3 with a weight changed"


def test_failback_waits_for_a_preempt_delay_and_nopreempt_leaves_the_vip():
    delayed = _lab(("  preempt: true ", "  preempt: true\n  preempt_delay: 20\n "))
    _, back = _phases(delayed, "failback")
    assert back.settle == pytest.approx(20 + 3 + 206 / 256) and back.holders == {"172.25.1.100": "server3"}
    _, stays = _phases(spec.load(paths.LABS / "unicast.yaml"), "failback")
    assert stays.holders == {"172.25.1.100": "server4"}


def _judged(phase: scenarios.Phase, fails: tuple[float, float], transitions: int | None = None):
    """A phase acting at 10 s and judged until 30 s; every other request (server1's) fails in fails."""
    requests = [record(t / 20, not (t % 2 and fails[0] <= t / 20 < fails[1])) for t in range(20 * 40)]
    mark = verdicts.Mark(phase, 10.0, 10.5, 30.0, transitions=transitions)
    return verdicts.judge("s", mark, verdicts.Seen(requests), Margin(), resolution=0.05)


def test_a_blind_check_s_failures_last_until_the_heal_and_are_not_outside_its_window():
    (hang, _) = _phases(spec.load(), "realserver-hang")
    result = _judged(hang, (10.0, 30.0))
    assert result.failed > 100 and result.failed_outside == 0 and result.verdict == WITHIN
    assert _judged(hang, (0.0, 0.0)).verdict == FAIL  # nothing failed: the fault never showed


def test_a_seeing_check_s_failures_after_its_bound_fail_the_phase():
    (hang, _) = _phases(_lab(HTTP_GET), "realserver-hang")
    assert _judged(hang, (10.0, 20.0)).verdict == WITHIN
    assert _judged(hang, (10.0, 30.0)).verdict == FAIL  # still failing 19.5 s after: bound 12 + margin 4.4


def test_a_reload_must_cost_no_request_and_no_transition():
    (reload,) = _phases(spec.load(), "reload")
    assert _judged(reload, (0.0, 0.0), transitions=0).verdict == WITHIN
    moved = _judged(reload, (0.0, 0.0), transitions=2)
    assert "2 VRRP state transitions during 'reload keepalived on server3', expected 0" in moved.problems
    assert "requests failed during" in " ".join(_judged(reload, (11.0, 11.2), transitions=0).problems)


def test_the_blind_check_finding_names_http_get_and_its_timeouts():
    seed = spec.load()
    (hang, _) = _phases(seed, "realserver-hang")
    result = _judged(hang, (10.0, 30.0))
    run = ScenarioRun("realserver-hang", "", 0.0, 0.0, {}, [], [result])
    (finding,) = findings.of(seed, [run])
    assert "HTTP_GET" in finding.fix and "connect_timeout: 3" in finding.fix
    assert finding.knob == "health_check type TCP_CHECK" and finding.fixed_bound_ms == 12000
    checked = _lab(HTTP_GET)
    (seen, _) = _phases(checked, "realserver-hang")
    assert findings.of(checked, [ScenarioRun("x", "", 0, 0, {}, [], [_judged(seen, (10.0, 20.0))])]) == []


DIRECTOR = "2: eth0    inet 172.25.1.{n}/24 scope global eth0\n2: eth0    inet 172.25.1.100/32 scope global eth0\n"


def test_a_frozen_director_s_stale_vip_is_not_a_second_holder(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fake_ssh.reset()
    fake_ssh.answer("ip -4 -o addr show", node="server3", stdout=DIRECTOR.format(n=1))
    fake_ssh.answer("ip -4 -o addr show", node="server4", stdout=DIRECTOR.format(n=2))
    pause, resume = _phases(memory_provider.lab, "director-pause")
    runner = Runner(memory_provider, progress=lambda _: None)
    assert runner.end_state_problems(pause) == []
    assert runner.end_state_problems(resume) == ["VIP 172.25.1.100 held by ['server3', 'server4'], expected server3"]


def test_the_ipvs_table_is_held_to_the_file_s_members_and_weights(memory_provider, fake_ssh):
    memory_provider.up_now = True
    table = "TCP  172.25.1.100:80 rr\n  -> 172.25.1.101:80  Route {w} 0 0\n  -> 172.25.1.102:80  Route 1 0 0\n"
    fake_ssh.answer("ipvsadm -Ln", node="server3", stdout=table.format(w=1))
    state = LabState(memory_provider)
    assert state.table_problems(state.read(), {"server1": 1, "server2": 1}) == []
    fake_ssh.reset()
    fake_ssh.answer("ip -4 -o addr show", node="server3", stdout=DIRECTOR.format(n=1))
    fake_ssh.answer("ipvsadm -Ln", node="server3", stdout=table.format(w=2))
    assert state.table_problems(state.read(), {"server1": 2, "server2": 1}) == []
    (problem,) = state.table_problems(state.read(), {"server1": 1, "server2": 1})
    assert "'172.25.1.101': 2" in problem and "expected {'172.25.1.101': 1" in problem


def test_every_return_of_the_master_waits_out_a_preempt_delay():
    """keepalived-stop and director-crash bring the MASTER back too: with a preempt delay their
    end state comes that much later, or they would fail a lab that sets one."""
    delayed = _lab(("  preempt: true ", "  preempt: true\n  preempt_delay: 20\n "))
    for name in ("keepalived-stop", "director-crash", "failback"):
        _, back = _phases(delayed, name)
        assert back.settle == pytest.approx(20 + 3 + 206 / 256), name
    _, plain = _phases(spec.load(), "director-crash")
    assert plain.settle == pytest.approx(3 + 206 / 256)  # the seed's, as before
