"""Judging the probe's held keep-alive connections across a phase, without a lab."""

from __future__ import annotations

import pytest

from halab.prove import established


def connection(
    opened: float = 0.0,
    last_ok: float = 60.0,
    ended: float = 60.05,
    outcome: str = "open",
    stalls: list[list[float]] | None = None,
) -> dict:
    """One held connection as the agent records it (times relative to the probe's start)."""
    return {
        "conn": 0,
        "life": 1,
        "target": "vip",
        "opened": opened,
        "last_ok": last_ok,
        "ended": ended,
        "outcome": outcome,
        "error": "",
        "responses": 100,
        "page": "<h1>server1's page</h1>",
        "stalls": stalls or [],
    }


def test_a_connection_that_kept_flowing_survived_with_its_longest_stall():
    held = established.judge([connection(stalls=[[10.0, 11.2]]), connection()], 10.1, 30.0, limit=3.0)
    assert (held.total, held.survived) == (2, 2)
    assert held.longest_stall == pytest.approx(1.2)


def test_a_reset_belongs_to_the_phase_its_stall_began_in_even_if_it_came_later():
    reset = connection(last_ok=10.05, ended=25.0, outcome="reset")  # crash at 10.1, reset during the next phase
    crash = established.judge([reset], 10.1, 20.0, limit=3.0)
    assert (crash.total, crash.survived, crash.ends) == (1, 0, {"reset": 1})
    assert crash.longest_stall == pytest.approx(25.0 - 10.05)
    restart = established.judge([reset], 20.0, 40.0, limit=3.0)
    assert restart.total == 0  # already lost: not established when the next phase began


def test_a_stall_longer_than_the_limit_is_lost_and_one_before_the_phase_is_not_its_own():
    frozen = connection(stalls=[[10.05, 16.0]])
    assert established.judge([frozen], 10.1, 30.0, limit=3.0).ends == {"stalled too long": 1}
    assert established.judge([frozen], 17.0, 30.0, limit=3.0).survived == 1


def test_a_connection_opened_during_the_phase_is_not_judged_by_it():
    assert established.judge([connection(opened=12.0)], 10.0, 30.0, limit=3.0).total == 0


def test_a_connection_still_waiting_at_the_probes_end_shows_its_stall():
    assert established.stalls(connection(last_ok=55.0, ended=60.0)) == [(55.0, 60.0)]
    assert established.stalls(connection(last_ok=59.95, ended=60.0)) == []


def test_expectations_fail_when_contradicted_and_name_why():
    kept, lost = established.Held(8, 8, 0.4), established.Held(8, 0, 6.0, {"reset": 8})
    assert established.problems(lost, established.LOST, 3.0) == []
    assert "expected them lost" in established.problems(kept, established.LOST, 3.0)[0]
    assert "lvs_sync_daemon" in established.problems(kept, established.LOST, 3.0)[0]
    assert established.problems(kept, established.KEPT, 3.0) == []
    assert "8 of 8 established connections lost (8 reset)" in established.problems(lost, established.KEPT, 3.0)[0]
    assert "nothing to judge" in established.problems(established.Held(), established.KEPT, 3.0)[0]
    assert established.problems(lost, "", 3.0) == []


def test_the_stall_bound_adds_the_retransmission_backoff():
    assert established.stall_bound(0.34) == pytest.approx(2 * 0.34 + 0.2)
