"""halab.durations: a stage's estimate from its last run on this host, and the lines it prints."""

from __future__ import annotations

import pytest

from halab import durations, paths


@pytest.mark.parametrize(
    ("elapsed", "last", "said"),
    [
        (62, None, "1:02 so far (no earlier run on this host to estimate from)"),
        (62, 190, "1:02 so far, about 2:08 left (the last run took 3:10)"),
        (190, 190, "3:10 so far, about 0:00 left (the last run took 3:10)"),
        (250, 190, "4:10 so far, 1:00 over the last run's 3:10"),
        (3725, 3600, "1:02:05 so far, 2:05 over the last run's 1:00:00"),
    ],
)
def test_the_estimate_against_the_last_run(elapsed, last, said):
    assert durations.estimate(elapsed, last) == said


def test_a_finished_stage_is_the_next_runs_estimate(home, monkeypatch):
    clock = iter([100.0, 292.4, 500.0, 500.0, 530.0])  # start, end; start, the line, end
    monkeypatch.setattr(durations.time, "monotonic", lambda: next(clock))
    said: list[str] = []
    with durations.Stage("bake debian-12", "==> bake", said.append, terminal=False) as stage:
        stage.finished("ok", ok=True)
    assert durations.recorded() == {"bake debian-12": 192.4}
    with durations.Stage("bake debian-12", "==> bake", said.append, terminal=False) as stage:
        assert stage.line() == "==> bake: 0:00 so far, about 3:12 left (the last run took 3:12)"
        stage.finished("FAILED", ok=False, note="packer exited 1")
    assert said == [
        "==> bake (no earlier run on this host)",
        "==> bake ok in 3:12",
        "==> bake (the last run took 3:12)",
        "==> bake FAILED in 0:30 (last run 3:12) packer exited 1",
    ]
    assert durations.recorded() == {"bake debian-12": 192.4}  # a failed stage's time estimates nothing


def test_stages_are_recorded_side_by_side_and_a_foreign_file_is_ignored(home):
    durations.remember("a", 1.0)
    durations.remember("b", 2.0)
    assert durations.recorded() == {"a": 1.0, "b": 2.0}
    paths.durations().write_text('{"a": "soon", "b": -1, "c": 3}')
    assert durations.recorded() == {"c": 3.0}
    paths.durations().write_text("[1, 2]")
    assert durations.recorded() == {}
    paths.durations().write_text("not json")
    assert durations.recorded() == {}


def test_on_a_terminal_the_line_ticks_then_leaves_nothing(home, capsys):
    with durations.Stage("up", "vagrant up", print, terminal=True) as stage:
        assert stage._live is not None and stage._live.is_started
    assert stage._live is not None and not stage._live.is_started
    assert capsys.readouterr().out.startswith("vagrant up (no earlier run on this host)")
