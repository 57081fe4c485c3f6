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
