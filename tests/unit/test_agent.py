"""The measuring agent itself, run as the probe runs it, against an HTTP server on loopback."""

from __future__ import annotations

import http.server
import json
import re
import socket
import struct
import subprocess
import sys
import threading

import pytest

from halab import paths
from halab.prove import probe


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


@pytest.fixture
def keepalive_server():
    """A loopback HTTP/1.1 server that answers `replies` requests per connection, then resets
    it (SO_LINGER 0: an RST, as a director without the connection's IPVS entry sends)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    replies = {"count": 1000}

    def serve(conn: socket.socket) -> None:
        with conn:
            for _ in range(replies["count"]):
                if not conn.recv(4096):
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n<h1>held</h1>\r\n\r\n")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", replies
    listener.close()


def test_held_connections_send_on_one_connection_and_are_recorded_once_each(keepalive_server):
    target, _ = keepalive_server
    records = run_agent("http", "--target", target, "--rate", "5", "--duration", "1.5", "--hold", "3")
    held = [r for r in records if "conn" in r]
    assert sorted(r["conn"] for r in held) == [0, 1, 2]
    assert all(r["outcome"] == "open" and r["page"] == "<h1>held</h1>" and r["stalls"] == [] for r in held)
    assert all(10 <= r["responses"] <= 16 for r in held)  # one every 0.1 s for 1.5 s
    assert records[-1]["event"] == "end"


def test_a_reset_held_connection_is_recorded_as_reset_and_its_slot_reconnects(keepalive_server):
    target, replies = keepalive_server
    replies["count"] = 5
    records = run_agent("http", "--target", target, "--rate", "5", "--duration", "1.5", "--hold", "1")
    lives = [r for r in records if "conn" in r]
    assert lives[0]["outcome"] == "reset" and lives[0]["responses"] == 5 and "Reset" in lives[0]["error"]
    assert len(lives) >= 2 and [r["life"] for r in lives] == list(range(1, len(lives) + 1))


def test_a_watcher_whose_node_died_keeps_what_it_recorded():
    """An agent on a director that crashed: its complete lines count, the cut one does not."""
    script = "import sys; print('{\"at\": 1}'); print('{\"at\": 2}'); sys.stdout.write('{\"at\"'); sys.exit(255)"
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen([sys.executable, "-c", script], text=True, **pipes)
    records, failed = probe.salvage(process, timeout=10)
    assert records == [{"at": 1}, {"at": 2}] and "ended with 255" in failed


def _spawned(code: str) -> subprocess.Popen[str]:
    """A stand-in agent: a Python one-liner with the pipes a spawned agent has."""
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_started_returns_the_first_record_and_finish_the_rest():
    agent = _spawned(
        "import json, time; print(json.dumps({'event': 'listening'}), flush=True); time.sleep(0.5); "
        "print(json.dumps({'received': 3}))"
    )
    assert probe.started(agent) == {"event": "listening"}
    assert agent.poll() is None  # it said it listens before it ended
    assert probe.finish(agent) == [{"received": 3}]


def test_started_leaves_what_follows_its_line_to_finish_even_when_it_is_already_in_the_pipe():
    agent = _spawned("import json; print(json.dumps({'event': 'listening'})); print(json.dumps({'received': 2}))")
    agent.wait()  # both lines in the pipe before started() reads
    assert probe.started(agent) == {"event": "listening"}
    assert probe.finish(agent) == [{"received": 2}]


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("import sys; sys.stderr.write('cannot bind'); sys.exit(3)", "said nothing and ended (3): cannot bind"),
        ("import time; time.sleep(30)", "said nothing within 1 s"),
        ("print('not json', flush=True)", "not JSON"),
    ],
)
def test_started_says_why_an_agent_never_got_ready(code, said):
    agent = _spawned(code)
    with pytest.raises(probe.ProbeError, match=re.escape(said)):
        probe.started(agent, timeout=1)
    agent.kill()
    agent.wait()
