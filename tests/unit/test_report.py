"""Failover results as a table, JSON, JUnit XML and a PNG timeline."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from rich.cells import cell_len
from rich.text import Text

from halab import paths, spec
from halab.prove import findings, report, scenarios
from halab.prove.results import PhaseResult, ScenarioRun
from tests.fixtures import judged, phase_of
from tests.fixtures import probe_record as record


def test_reports_table_json_and_junit(tmp_path):
    result = judged(phase_of(), 0.0, 4.0, [record(3.9, False)], ["VIP v held by nobody"])
    run = ScenarioRun("s", "a test", 0.0, 0.0, {}, [record(3.9, False)], [result])
    text = report.table([run])
    assert "FAIL" in text and "VIP v held by nobody" in text
    data = json.loads(report.write_json([run], "lab", tmp_path / "f.json").read_text())
    assert data["passed"] is False and data["scenarios"][0]["phases"][0]["passed"] is False
    suite = ET.parse(report.write_junit([run], "lab", tmp_path / "f.xml")).getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None
    assert report.plot(run, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


# Every C0 control, DEL, two C1 controls (NEL, CSI), a lone surrogate and U+FFFF: what node
# stderr, an HTTP status line or an exception's text can carry into a report.
HOSTILE = "".join(map(chr, range(0x20))) + "\x7f\x85\x9b\ud800\uffff"


def hostile_run() -> ScenarioRun:
    """A run whose every free text holds HOSTILE: a phase's problem, the error a step raised."""
    result = judged(phase_of(f"crash {HOSTILE}"), 0.0, 4.0, [record(3.9, False)], [f"HTTP/1.1 500 {HOSTILE}"])
    return ScenarioRun(
        f"s{HOSTILE}", "d", 0.0, 0.0, {}, [], [result], failed_step=f"step{HOSTILE}", error=f"stderr: {HOSTILE}"
    )


def test_junit_is_well_formed_whatever_control_characters_the_run_carried(tmp_path):
    """ElementTree wrote control characters as they were: no XML parser read the file back."""
    context = {"versions": {"keepalived": f"2.2.7{HOSTILE}"}, "substitutions": [HOSTILE], "interrupted": HOSTILE}
    path = report.write_junit([hostile_run()], f"lab{HOSTILE}", tmp_path / "f.xml", context=context)
    root = ET.parse(path).getroot()  # raises on any character XML 1.0 does not allow
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("message") == "stderr: " + report.escaped(HOSTILE, report.NOT_XML)
    assert "\\x1b\\x1c" in error.get("message", "") and "\\ud800\\uffff" in error.get("message", "")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "HTTP/1.1 500 \\x00\\x01" in failure.get("message", "")


def test_the_table_and_findings_show_control_characters_escaped():
    """No raw control reaches the terminal; the notes under the table (folded at its width)
    carry each one as \\xNN."""
    run = hostile_run()
    text = report.table([run], not_run=[HOSTILE], interrupted=HOSTILE)
    assert not report.NOT_PRINTABLE.search(text.replace("\n", ""))
    joined = text.replace("\n", "")
    assert "HTTP/1.1 500" in joined
    assert all(escaped in joined for escaped in ("\\x00\\x01\\x02", "\\x1b", "\\x7f\\x85\\x9b"))
    assert max(len(line) for line in text.splitlines()) <= report.WIDTH


def _catalogue() -> tuple[spec.Lab, list[ScenarioRun]]:
    """Every scenario of the seed lab's catalogue with wide, real-shaped figures: outages and
    stalls of six digits, the VIP moving twice and the gateway once in every phase."""
    lab = spec.load(str(paths.DEFAULT_LAB))
    runs = []
    for scenario in [*scenarios.scenarios(lab), scenarios.soak(lab)]:
        phases = []
        for number, phase in enumerate(scenario.phases):
            start = 10.0 * number
            moves = [
                {"vip": "172.25.1.100", "to": "server4", "at": start + 1.234},
                {"vip": "172.25.1.100", "to": "server3", "at": start + 12.345},
            ]
            phases.append(
                PhaseResult(
                    scenario.name, phase.name, int(phase.bound * 1000), phase.basis, 9999, 123456, 12345, 0, "",
                    moves, [], start, start + 5, start + 9, held=20, survived=19, longest_stall_ms=123456,
                    failing_ms=123456, gateway_moves=moves[:1],
                )
            )  # fmt: skip
        runs.append(ScenarioRun(scenario.name, scenario.description, 0.0, 0.0, {}, [], phases))
    return lab, runs


@pytest.mark.parametrize("terminal", [False, True])
def test_the_seed_catalogues_table_fits_120_columns(terminal):
    lab, runs = _catalogue()
    found = findings.of(lab, runs)
    text = report.table(runs, found, ["never"], "", terminal=terminal) + "\n" + report.findings_text(found)
    shown = [Text.from_ansi(line).plain for line in text.splitlines()]
    assert max(cell_len(line) for line in shown) <= 120, "\n".join(shown)
    assert ("\x1b[" in text) is terminal  # colour on a terminal only: a CI log gets plain text
    for run in runs:  # every phase has its row, whatever wrapped
        for phase in run.phases:
            assert any(line.startswith(run.scenario) and phase.phase.split()[0] in line for line in shown)
    plain = "\n".join(shown)
    assert all(f"[{number}]" in plain for number in range(1, len(found) + 1))
    assert "server4 +1234" in plain and "gw server4 +1234" in plain and "verdict  finding" in plain


def test_json_keeps_every_column_the_terminal_leaves_out(tmp_path):
    _, runs = _catalogue()
    data = json.loads(report.write_json(runs, "seed", tmp_path / "f.json").read_text())
    phase = data["scenarios"][0]["phases"][0]
    assert phase["margin_ms"] == 9999 and phase["vip_moves"][1]["to"] == "server3" and phase["basis"]
    assert "limit ms" not in report.table(runs) and "limit ms" in report.COLUMNS
