"""Failover results as a table, JSON, JUnit XML and a PNG timeline."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from halab.prove import report
from halab.prove.results import ScenarioRun
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
    run = hostile_run()
    text = report.table([run], not_run=[HOSTILE], interrupted=HOSTILE)
    assert not report.NOT_PRINTABLE.search(text.replace("\n", ""))
    assert "HTTP/1.1 500 \\x00\\x01\\x02" in text and "\\x1b" in text and "\\x7f\\x85\\x9b" in text
    rows = [line for line in text.splitlines() if line.startswith("s\\x00\\x01")]
    assert len(rows) == 2  # the phase's row and the error's, each on one line
