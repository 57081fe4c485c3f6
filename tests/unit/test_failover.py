"""The failover arithmetic without a lab: bounds from lab files, judging probe records,
the reports, the IPVS parser, and the agent itself against a local HTTP server."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from halab import spec
from halab.prove import agent, failover, ipvs, report

LABS = Path(__file__).resolve().parents[2] / "labs"


def phases(lab_file: str) -> dict[str, failover.Phase]:
    lab = spec.load(LABS / lab_file)
    return {phase.name: phase for scenario in failover.scenarios(lab) for phase in scenario.phases}


def test_seed_bounds_follow_vrrp_and_the_checker():
    seed = phases("seed.yaml")
    assert seed["stop keepalived on server3"].bound == pytest.approx(206 / 256)
    assert seed["crash server3"].bound == pytest.approx(3 + 206 / 256)
    assert seed["stop nginx on server1"].bound == pytest.approx(3 + 3 + 1 * (1 + 3))
    assert seed["restore server3's link"].bound == pytest.approx(53 + 1)  # no garp refresh: ARP ageing
    assert seed["restart server3"].holders == {"172.25.1.100": "server3"}  # preempt


def test_unicast_bounds_scale_with_vrrpv3_and_nopreempt_keeps_the_backup():
    unicast = phases("unicast.yaml")
    assert unicast["crash server3"].bound == pytest.approx(3 * 0.5 + 206 * 0.5 / 256)
    assert unicast["restart server3"].holders == {"172.25.1.100": "server4"}
    assert unicast["restore server3's link"].bound == pytest.approx(max(2, 2 + 2) + 0.5)


def test_active_active_masters_and_failover_targets():
    dual = phases("active-active.yaml")
    assert dual["crash server3"].holders == {"172.25.1.100": "server4", "172.25.1.200": "server4"}
    assert dual["restart server3"].holders == {"172.25.1.100": "server3", "172.25.1.200": "server4"}


def record(sent: float, ok: bool, target: str = "vip", mac: str = "m3", latency: float = 0.01) -> dict:
    return {
        "sent": sent,
        "done": sent + latency,
        "ok": ok,
        "target": target,
        "mac": mac,
        **({"page": "<h1>server1's page</h1>"} if ok else {"error": "TimeoutError: timed out"}),
    }


def test_outage_is_the_longest_gap_between_successes_including_the_probes_end():
    requests = [record(t / 10, True) for t in range(10)] + [record(1.0 + t / 10, False) for t in range(30)]
    requests += [record(4.0 + t / 10, True) for t in range(10)]
    assert failover.outage(requests, 0.95, 6) == pytest.approx(4.0 - 0.9, abs=1e-6)
    stuck = [record(t / 10, True) for t in range(10)] + [record(1.0 + t / 10, False, latency=1.0) for t in range(30)]
    assert failover.outage(stuck, 0.95, 10) == pytest.approx(3.9 + 1.0 - 0.91, abs=1e-6)


def test_a_failure_after_the_window_fails_the_phase_and_is_named():
    phase = failover.Phase("crash x", lambda p: None, bound=1.0, basis="test", holders={})
    fine = [record(t / 10, t < 5 or t > 15) for t in range(40)]
    assert failover.judge("s", phase, 0.5, 0.5, 4.0, fine, {}, []).passed
    late = [*fine, record(3.9, False)]
    result = failover.judge("s", phase, 0.5, 0.5, 4.0, late, {}, [])
    assert not result.passed and result.failed_outside == 1 and "+3.40 s to vip" in result.reasons()[0]


def test_vip_moves_are_named_by_mac():
    requests = [record(t / 10, True, mac="m3" if t < 5 else "m4") for t in range(10)]
    moves = failover.vip_moves(requests, 0, 2, {"m3": "server3", "m4": "server4"})
    assert moves == [{"vip": "vip", "at": 0.5, "from": "server3", "to": "server4"}]


def test_reports_table_json_and_junit(tmp_path):
    phase = failover.Phase("crash x", lambda p: None, bound=1.0, basis="test", holders={})
    result = failover.judge("s", phase, 0.0, 0.0, 4.0, [record(3.9, False)], {}, ["VIP v held by nobody"])
    run = failover.ScenarioRun("s", "a test", 0.0, 0.0, {}, [record(3.9, False)], [result])
    text = report.table([run])
    assert "FAIL" in text and "VIP v held by nobody" in text
    data = json.loads(report.write_json([run], "lab", tmp_path / "f.json").read_text())
    assert data["passed"] is False and data["scenarios"][0]["phases"][0]["passed"] is False
    suite = ET.parse(report.write_junit([run], "lab", tmp_path / "f.xml")).getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None
    assert report.plot(run, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_ipvs_tables_and_stats_parse():
    table = ipvs.parse(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  172.25.1.100:80 rr\n  -> 172.25.1.101:80              Route   1      0          53\n"
        "  -> 172.25.1.102:80              Route   2      0          54\n"
    )
    service = table[("TCP", "172.25.1.100", 80)]
    assert service.scheduler == "rr"
    assert [(d.address, d.method, d.weight) for d in service.destinations] == [
        ("172.25.1.101", "Route", 1),
        ("172.25.1.102", "Route", 2),
    ]
    stats = ipvs.parse(
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
        "TCP  172.25.1.100:80                   107      12K        0    37682        0\n"
    )
    assert stats[("TCP", "172.25.1.100", 80)].stats == {
        "conns": 107,
        "inpkts": 12000,
        "outpkts": 0,
        "inbytes": 37682,
        "outbytes": 0,
    }


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on the host's loopback (never the lab subnet) serving one page."""
    (tmp_path / "index.html").write_text("<h1>loopback's page</h1>\n")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_agent(*args: str, close_stdin_after: float | None = None) -> list[dict]:
    """The agent as the probe runs it (`python3 -c`); its stdin stays open unless told to close."""
    process = subprocess.Popen(
        [sys.executable, "-c", Path(agent.__file__).read_text(), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(close_stdin_after if close_stdin_after is not None else 30, process.stdin.close)
    timer.start()
    out = process.stdout.read()  # until the agent exits: at its count, its duration, or stdin's end
    timer.cancel()
    process.wait(timeout=30)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_the_agent_probes_at_its_rate_and_stops_at_its_count(local_server):
    records = run_agent("http", "--target", local_server, "--rate", "50", "--count", "10", "--duration", "10")
    requests = [r for r in records if "seq" in r]
    assert len(requests) == 10 and all(r["ok"] and r["page"] == "<h1>loopback's page</h1>" for r in requests)
    assert records[-1] == {**records[-1], "event": "end", "requests": 10}
    span = max(r["sent"] for r in requests) - min(r["sent"] for r in requests)
    assert span >= 9 / 50 * 0.9  # paced, not a burst


def test_the_agent_stops_when_its_stdin_closes(local_server):
    records = run_agent("http", "--target", local_server, "--rate", "20", "--count", "1000", close_stdin_after=0.5)
    assert records[-1]["event"] == "end" and 3 <= records[-1]["requests"] < 100


def test_the_agent_records_refused_connections_as_failures():
    requests = [r for r in run_agent("http", "--target", "127.0.0.1:9", "--rate", "20", "--count", "3") if "seq" in r]
    assert len(requests) == 3 and not any(r["ok"] for r in requests)
    assert all("Refused" in r["error"] for r in requests)
