"""The one way to run a command on a node of a lab: ssh through the lab's ssh_config.

Every provider writes an ssh_config (the same file testinfra's ssh backend reads); this
module alone turns "run this on node X" into an ssh process: the command line, the
timeout, what a failure looks like, the ControlMaster that keeps a command at ~0.1 s,
and the node's clock offset for measurements.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import NoReturn

from halab.errors import ProviderError
from halab.paths import LabPaths

# ssh's exit code for "could not reach the node"; a timeout is reported the same way.
UNREACHABLE = 255
# Seconds a node's idle master connection lives on (teardown stops it sooner). Longer than a
# VM's restart under TCG (2-4 minutes): otherwise every node's master expires meanwhile, and
# the next lab-state read opens five fresh ssh sessions at once, whose key exchanges stall
# emulated guests for over a second, MASTER included (CI saw two probe requests time out so).
CONTROL_PERSIST = 900


def client_options(paths: LabPaths, netns: str | None = None) -> str:
    """The `Host *` settings every provider's ssh_config ends with: one master connection per
    node (ControlPersist; its socket directory is made here), never a password prompt, short
    connection timeouts. With netns, ssh reaches the nodes from inside that network namespace
    (a ProxyCommand), so every user of the file (ssh -F, testinfra) does, and the host's own
    namespace never sees the nodes' addresses."""
    paths.control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    proxy = f"    ProxyCommand ip netns exec {netns} socat - TCP:%h:%p,connect-timeout=5\n" if netns else ""
    return proxy + (
        "    ControlMaster auto\n"
        f"    ControlPath {paths.control_sockets}\n"
        f"    ControlPersist {CONTROL_PERSIST}\n"
        "    BatchMode yes\n"
        "    ConnectTimeout 10\n"
        "    LogLevel ERROR\n"
    )


class Remote:
    """Commands on the nodes of one lab."""

    def __init__(self, ssh_config: Path) -> None:
        self.ssh_config = ssh_config

    def argv(self, node: str, command: str | None = None) -> list[str]:
        """The ssh command line: an interactive login without a command."""
        return ["ssh", "-F", str(self.ssh_config), node, *([command] if command is not None else [])]

    def run(self, node: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """One command to completion. A node that does not answer in time (its link cut, say)
        gives ssh's own failure code, 255, not an exception."""
        argv = self.argv(node, command)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, UNREACHABLE, "", f"{node}: no answer within {timeout:.0f} s")

    def check(self, node: str, command: str, timeout: float = 30) -> str:
        """One command that must succeed; its output, or ProviderError naming node, command and why."""
        result = self.run(node, command, timeout)
        if result.returncode != 0:
            why = result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}"
            raise ProviderError(f"{node}: `{command}` failed: {why}")
        return result.stdout

    def forget(self, node: str) -> None:
        """Close the master connection to node, if there is one. After a crash (no FIN was
        sent) or a cut link (TCP backed off its retransmissions), the old master would carry
        the next command into a dead or stalled connection; the next command opens a fresh one."""
        subprocess.run(
            ["ssh", "-F", str(self.ssh_config), "-O", "exit", node],
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )

    def spawn(self, node: str, command: str) -> subprocess.Popen[str]:
        """A command running in the background with pipes on all three streams; closing its
        stdin is how a long-running command (a probe) is told to stop."""
        return subprocess.Popen(
            self.argv(node, command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def login(self, node: str, command: list[str]) -> NoReturn:
        """Replace this process with ssh to node (a terminal for a person, or one command)."""
        os.execvp("ssh", self.argv(node, " ".join(command) if command else None))

    def clock_offset(self, node: str, samples: int = 5) -> float:
        """The node's clock minus this host's, seconds, as NTP reads it: of a few round trips,
        the shortest one's midpoint (its error is at most half that trip). `date` answers in
        a few ms where a Python interpreter took a hundred, which skewed every reading; and
        the reading nearest zero, taken before, was biased towards zero: a loaded host put
        the local lab's client at -0.35 s when the shortest trip (84 ms) said -0.44 s, and a
        request failed by a fault was charged to the quiet phase before it."""
        readings, failed = [], ""
        for _ in range(samples):
            before = time.time()
            result = self.run(node, "date +%s.%N")
            after = time.time()
            if result.returncode != 0:  # a reading is idempotent: one lost to a hiccup is skipped
                failed = result.stderr.strip() or f"exit {result.returncode}"
                continue
            readings.append((after - before, float(result.stdout.strip()) - (before + after) / 2))
        if not readings:
            raise ProviderError(f"cannot read the clock of {node}: {failed}")
        return min(readings)[1]
