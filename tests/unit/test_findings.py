"""Findings from synthetic runs: which outages a setting would shorten, and by how much."""

from __future__ import annotations

import json

import pytest

from halab import paths, spec
from halab.prove import bounds, findings, report, scenarios, verdicts
from halab.prove.results import Margin, ScenarioRun
from tests.fixtures import probe_record as record


def run_of(
    lab: spec.Lab, scenario: str, down: tuple[float, float], connections: list[dict] | None = None
) -> ScenarioRun:
    """A scenario whose phases act at 10 s and 50 s (the probe runs 150 s at 20 requests/s)
    and whose VIP fails from down[0] to down[1] s."""
    chosen = next(s for s in scenarios.scenarios(lab) if s.name == scenario)
    requests = [record(t / 20, not (down[0] <= t / 20 < down[1])) for t in range(20 * 150)]
    spans = [(10.0, 50.0), (50.0, 145.0)]
    seen = verdicts.Seen(requests, connections or [])
    results = [
        verdicts.judge(scenario, verdicts.Mark(phase, start, start, until), seen, Margin())
        for phase, (start, until) in zip(chosen.phases, spans, strict=True)
    ]
    return ScenarioRun(scenario, chosen.description, 0.0, 0.0, {}, requests, results)


@pytest.fixture
def seed() -> spec.Lab:
    return spec.load(paths.LABS / "seed.yaml")


def test_a_healed_split_brain_without_garp_refresh_is_a_finding_with_the_fixed_bound(seed, tmp_path):
    run = run_of(seed, "link-cut", (50.0, 50.0 + 51.0))
    found = findings.of(seed, [run], tmp_path)
    heal = [f for f in found if f.phase == "restore server3's link"]
    assert len(heal) == 1
    # max(garp 2, recheck 3 + 3) + advert 1, from the same formula as the verdict's bound
    assert heal[0].fixed_bound_ms == round(bounds.heal(seed, 2).seconds * 1000) == 7000
    assert heal[0].bound_ms == 54000 and "garp_master_refresh: 2" in heal[0].fix
    assert "51" in heal[0].measured


def test_the_split_brain_finding_cites_a_lab_with_the_fix_from_the_same_artifacts_tree(seed, tmp_path):
    unicast = spec.load(paths.LABS / "unicast.yaml")
    other = run_of(unicast, "link-cut", (50.0, 52.5))
    report.write_json(
        [other],
        "t-unicast",
        tmp_path / "t-unicast" / "artifacts" / "latest" / "failover.json",
        [],
        {"settings": findings.settings(unicast)},
    )
    found = findings.of(seed, [run_of(seed, "link-cut", (50.0, 101.0))], tmp_path)
    assert "'t-unicast' (garp_master_refresh 2) measured 2550 ms" in found[0].note


def test_a_short_heal_is_no_finding(seed, tmp_path):
    assert findings.of(seed, [run_of(seed, "link-cut", (50.0, 52.0))], tmp_path) == []


def test_health_check_timings_dominating_a_real_server_failure(seed, tmp_path):
    run = run_of(seed, "nginx-stop", (10.0, 18.0))
    found = findings.of(seed, [run], tmp_path)
    assert [f.phase for f in found] == ["stop nginx on server1"]
    assert found[0].bound_ms == 10000 and found[0].fixed_bound_ms == 4000
    assert "delay_loop 3 + connect_timeout 3" in found[0].knob


def test_nopreempt_leaving_the_vip_on_the_backup(tmp_path):
    unicast = spec.load(paths.LABS / "unicast.yaml")
    found = findings.of(unicast, [run_of(unicast, "director-crash", (10.0, 12.0))], tmp_path)
    assert [f.knob for f in found] == ["vrrp.preempt: false"]
    assert "stayed on server4 (priority 50)" in found[0].measured and found[0].fixed_bound_ms == 500


def test_a_low_backup_priority_on_a_clean_stop(seed, tmp_path):
    found = findings.of(seed, [run_of(seed, "keepalived-stop", (10.0, 10.85))], tmp_path)
    assert [f.knob for f in found] == ["nodes.server4.priority 50"]
    assert found[0].fixed_bound_ms == round((256 - 99) / 256 * 1000)


def test_findings_reach_the_table_json_and_junit_and_leave_the_verdict_alone(seed, tmp_path):
    run = run_of(seed, "link-cut", (50.0, 101.0))
    found = findings.of(seed, [run], tmp_path)
    table = report.table([run], found)
    text = table + "\n" + report.findings_text(found)
    # The phase wraps in its column: the row is the table's line that carries the mark.
    line = next(line for line in table.splitlines() if line.startswith("link-cut") and "[1]" in line)
    assert " within " in line  # within its (ARP-ageing) bound: the verdict keeps its meaning
    assert "[1] link-cut / restore server3's link" in text
    context = {"versions": {"nginx": "1.22.1"}, "substitutions": ["nginx 1.22.1 instead of ..."]}
    data = json.loads(report.write_json([run], "seed", tmp_path / "f.json", found, context).read_text())
    assert data["findings"][0]["fixed_bound_ms"] == 7000 and data["versions"] == {"nginx": "1.22.1"}
    xml = report.write_junit([run], "seed", tmp_path / "f.xml", found, context).read_text()
    assert "finding: link-cut / restore" in xml and 'name="version.nginx" value="1.22.1"' in xml


def test_established_connections_lost_without_sync_name_lvs_sync_daemon_as_the_fix(seed, tmp_path):
    reset = {"opened": 1.0, "last_ok": 10.0, "ended": 18.0, "outcome": "reset", "stalls": []}
    survivor = {"opened": 1.0, "last_ok": 149.0, "ended": 149.05, "outcome": "open", "stalls": [[10.0, 11.0]]}
    run = run_of(seed, "director-crash", (10.0, 14.0), [reset, survivor])
    assert run.phases[0].connections == "1/2" and run.phases[0].passed  # lost, as expected without sync
    found = findings.of(seed, [run], tmp_path)
    assert [f.fix.split(" (")[0] for f in found] == ["vrrp.lvs_sync_daemon: true"]
    assert "1 of 2 established connections lost" in found[0].sentence()
    assert "kept" in report.table([run], found) and "1/2" in report.table([run], found)


def test_a_preempting_return_that_cut_requests_again_is_a_finding(seed, tmp_path):
    """The MASTER's return moves the VIP a second time: requests in flight on the BACKUP
    are reset then. Nopreempt avoids it; the finding says so, with what the client lost."""
    run = run_of(seed, "keepalived-stop", (54.0, 54.2))
    run.phases[1].vip_moves = [{"vip": "vip", "at": 54.1, "from": "server4", "to": "server3"}]
    found = [f for f in findings.of(seed, [run], tmp_path) if f.phase == "start keepalived on server3"]
    assert len(found) == 1 and "server3's return moved the VIP a second time: 4 requests failed" in found[0].measured
    assert found[0].fix.startswith("vrrp.preempt: false (server4 keeps the VIP")
    quiet = run_of(seed, "keepalived-stop", (11.0, 11.5))  # nothing failed on the return
    quiet.phases[1].vip_moves = run.phases[1].vip_moves
    assert not [f for f in findings.of(seed, [quiet], tmp_path) if f.phase == "start keepalived on server3"]
