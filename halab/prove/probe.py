"""The host's side of the measuring agent: run agent.py on a node, through halab.remote.

Only the lab's ssh_config is used, so a probe works the same on every provider. The
agent's source travels on the command line (`python3 -c`), leaving stdin free: closing
it is how a running http probe is told to stop.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field

from halab import paths
from halab.errors import ProbeError
from halab.remote import Remote


def command(args: list[str]) -> str:
    """The shell command running the agent with args on a node (its source inline)."""
    return "python3 -c " + shlex.quote(paths.AGENT.read_text()) + " " + " ".join(shlex.quote(a) for a in args)


# The longest first line started() reads (an agent's records are short).
FIRST_LINE = 64 * 1024


def run(remote: Remote, node: str, args: list[str], timeout: float = 60) -> list[dict]:
    """One agent command to completion; its JSON records."""
    try:
        return finish(spawn(remote, node, args), timeout)
    except ProbeError as exc:
        raise ProbeError(f"agent {args[0]} on {node}: {exc}") from None


def spawn(remote: Remote, node: str, args: list[str]) -> subprocess.Popen[str]:
    """An agent command running in the background (e.g. a listener); finish() collects it."""
    return remote.spawn(node, command(args))


def started(process: subprocess.Popen[str], timeout: float = 30) -> dict:
    """A spawned agent's first record, waited for (bounded): a listener says it listens only once
    it can hear, so what is sent after this counts. Read a byte at a time from the pipe itself,
    so nothing after that line is taken from what finish() collects."""
    assert process.stdout is not None  # spawned with a pipe
    line, deadline = b"", time.monotonic() + timeout
    while not line.endswith(b"\n") and len(line) < FIRST_LINE:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        byte = os.read(process.stdout.fileno(), 1) if ready else b""
        if not byte:
            _, err, _ = _ended(process, 5 if ready else 0)  # silent: stopped at once
            said = (
                f"said nothing within {timeout:.0f} s"
                if not ready
                else f"said nothing and ended ({process.returncode})"
            )
            raise ProbeError(f"agent {said}: {err.strip()[-200:]}")
        line += byte
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        _ended(process, 0)
        raise ProbeError(f"agent said something that is not JSON ({exc}): {line[:200]!r}") from None


def finish(process: subprocess.Popen[str], timeout: float = 60) -> list[dict]:
    """Wait for a spawned agent command (bounded) and return its JSON records."""
    out, err, late = _ended(process, timeout)
    if late:
        raise ProbeError(f"agent did not finish within {timeout:.0f} s: {err.strip()}")
    if process.returncode != 0:
        raise ProbeError(f"agent failed ({process.returncode}): {err.strip()}")
    try:
        return [json.loads(line) for line in out.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ProbeError(f"agent said something that is not JSON ({exc}): {out[:200]!r}") from None


def salvage(process: subprocess.Popen[str], timeout: float = 60) -> tuple[list[dict], str]:
    """A spawned agent's complete JSON records and, if it did not end well, why: an agent on
    a node that crashed dies with its node, and what it recorded until then still counts."""
    out, err, _ = _ended(process, timeout)
    records = []
    for line in out.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line the node's end cut short
    failed = "" if process.returncode == 0 else f"agent ended with {process.returncode}: {err.strip()[-200:]}"
    return records, failed


def _ended(process: subprocess.Popen[str], timeout: float) -> tuple[str, str, bool]:
    """An agent's stdout and stderr once it ended, killed if it outlived timeout (then True)."""
    try:
        out, err = process.communicate(timeout=timeout)
        return out, err, False
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return out, err, True


@dataclass
class HttpProbe:
    """A running `agent http`: requests to targets at rate per second until stop()."""

    remote: Remote
    node: str
    targets: list[str]
    rate: float = 20.0
    timeout: float = 1.0
    duration: float = 300.0
    hold: int = 0  # keep-alive connections held per VIP besides the new-connection requests
    hold_interval: float = 0.1
    stall_limit: float = 30.0
    records: list[dict] = field(default_factory=list)

    def start(self) -> HttpProbe:
        args = [
            "http",
            "--rate",
            str(self.rate),
            "--timeout",
            str(self.timeout),
            "--duration",
            str(self.duration),
            "--count",
            str(int(self.duration * self.rate * len(self.targets)) + 1),
            "--hold",
            str(self.hold),
            "--hold-interval",
            str(self.hold_interval),
            "--stall-limit",
            str(self.stall_limit),
        ]
        for target in self.targets:
            args += ["--target", target]
        self._process = spawn(self.remote, self.node, args)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 30
        while not any(r.get("event") == "start" for r in list(self.records)):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                why = self._process.stderr.read().strip() if self._process.stderr else ""
                raise ProbeError(f"the http probe on {self.node} did not start: {why}")
            time.sleep(0.05)
        return self

    def _read(self) -> None:
        assert self._process.stdout is not None  # spawned with a pipe
        for line in self._process.stdout:
            if line.strip():
                self.records.append(json.loads(line))

    def stop(self) -> list[dict]:
        """End the probe (close its stdin), wait for its last requests; the request records."""
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=self.timeout + 15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=5)
        return self.requests()

    def requests(self) -> list[dict]:
        return [r for r in self.records if "seq" in r]

    def connections(self) -> list[dict]:
        """The held connections, one record each, written as each ended (all by stop())."""
        return [r for r in self.records if "conn" in r]
