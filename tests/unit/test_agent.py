"""The measuring agent itself, run as the probe runs it, against an HTTP server on loopback."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import pytest

from halab import paths


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


def run_agent(*args: str, close_stdin_after_requests: int = 0) -> list[dict]:
    """The agent as the probe runs it (`python3 -c`), until it exits: at its count, its
    duration, or (when asked) once it has made that many requests and its stdin is closed.
    A 30 s timer closes stdin regardless, so a stuck agent cannot hang the suite."""
    process = subprocess.Popen(
        [sys.executable, "-c", paths.AGENT.read_text(), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    timer = threading.Timer(30, process.stdin.close)
    timer.start()
    records = []
    for line in process.stdout:
        records.append(json.loads(line))
        if close_stdin_after_requests and sum("seq" in r for r in records) == close_stdin_after_requests:
            process.stdin.close()
    timer.cancel()
    process.wait(timeout=30)
    return records


def test_the_agent_probes_at_its_rate_and_stops_at_its_count(local_server):
    records = run_agent("http", "--target", local_server, "--rate", "50", "--count", "10", "--duration", "10")
    requests = [r for r in records if "seq" in r]
    assert len(requests) == 10 and all(r["ok"] and r["page"] == "<h1>loopback's page</h1>" for r in requests)
    assert records[-1] == {**records[-1], "event": "end", "requests": 10}
    span = max(r["sent"] for r in requests) - min(r["sent"] for r in requests)
    assert span >= 9 / 50 * 0.9  # paced, not a burst


def test_the_agent_stops_when_its_stdin_closes(local_server):
    records = run_agent(
        "http", "--target", local_server, "--rate", "20", "--count", "1000", close_stdin_after_requests=3
    )
    assert records[-1]["event"] == "end" and 3 <= records[-1]["requests"] < 100


def test_the_agent_records_refused_connections_as_failures():
    requests = [r for r in run_agent("http", "--target", "127.0.0.1:9", "--rate", "20", "--count", "3") if "seq" in r]
    assert len(requests) == 3 and not any(r["ok"] for r in requests)
    assert all("Refused" in r["error"] for r in requests)


@pytest.mark.parametrize(
    "command", [["arp", "--ip", "172.25.1.100", "--source", "172.25.1.250"], ["capture", "--target", "172.25.1.100:80"]]
)
def test_arp_and_capture_need_the_labs_interface(command):
    # Found by the first run on Vagrant VMs: with an eth0 default the client captured and
    # asked ARP on the management NIC, where the directors answer with the wrong MAC.
    result = subprocess.run([sys.executable, "-c", paths.AGENT.read_text(), *command], capture_output=True, text=True)
    assert result.returncode == 2 and "--iface" in result.stderr
