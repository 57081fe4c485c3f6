"""The fast lab (labs/fast.yaml) on the local lab: sub-second takeover, established connections
kept by IPVS connection sync, and a minute of idling without a VRRP transition.

What is asserted is the protocol's (each phase's verdict: its bound plus the margin, the
held connections kept, the idle soak at zero); the measured figures are the benchmark's
(bench/failover_compare.py)."""

from __future__ import annotations

import json

import pytest

from halab import paths
from halab.paths import LabPaths
from tests.fixtures import SUITE_VERSIONS, assert_clean, invoke, needs_root

pytestmark = [needs_root("boots a user-mode Linux lab"), pytest.mark.root]


def test_fast_lab_keeps_established_connections_through_stop_and_crash_and_idles_without_flapping(builds, tmp_path):
    text = (paths.LABS / "fast.yaml").read_text().replace("name: fast", "name: t-fast")
    file = tmp_path / "t-fast.yaml"
    file.write_text(text + f"versions: {json.dumps(SUITE_VERSIONS)}\n")
    try:
        result = invoke(
            "test.failover",
            "--lab",
            str(file),
            "--scenario",
            "keepalived-stop,director-crash,idle",
            "--destroy",
            "always",
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        report = json.loads((LabPaths("t-fast").latest / "failover.json").read_text())
        phases = {p["phase"]: p for s in report["scenarios"] for p in s["phases"]}
        for fault in ("stop keepalived on server3", "crash server3"):
            assert phases[fault]["established"] == "kept"
            assert 0 < phases[fault]["held"] == phases[fault]["survived"], phases[fault]
        assert phases["idle"]["transitions"] == 0 and phases["idle"]["failed"] == 0, phases["idle"]
    finally:
        invoke("lab.down", "--lab", str(file))
    assert_clean("t-fast")
