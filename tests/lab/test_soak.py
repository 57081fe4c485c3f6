"""Soak and interruption: lab.up and lab.down in cycles, killed (-9) and interrupted (Ctrl-C)
at random points; after each cycle nothing is left and the next lab.up works."""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest

from halab import paths, spec
from halab.paths import LabPaths
from halab.providers.local.provider import LocalProvider
from tests.fixtures import assert_clean, invoke, lab_file, needs_root, requests_through_vip, task_environment

pytestmark = [needs_root("boots and kills user-mode Linux labs"), pytest.mark.root]
# Which cycles end how: a completed boot then lab.down, kill -9 of lab.up then lab.down,
# Ctrl-C of lab.up (which must clean up after itself).
PLAN = ("complete", "kill", "interrupt", "complete", "interrupt", "kill", "complete", "interrupt", "kill", "complete")


def start(*args: str) -> subprocess.Popen[str]:
    """A task running in the background, its output on one pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=paths.ROOT,
        env=task_environment(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_ten_cycles_of_up_and_down_killed_and_interrupted_leave_nothing(builds, tmp_path):
    file = lab_file(tmp_path, "t-soak")
    provider = LocalProvider(spec.load(file), progress=lambda _: None)
    chance = random.Random(14)
    rows, up_times = [], []
    for cycle, planned in enumerate(PLAN, 1):
        how = planned
        started = time.monotonic()
        upper = start("lab.up", "--lab", str(file))
        if how != "complete":
            time.sleep(chance.uniform(0.3, 8.0))
            if upper.poll() is None:
                os.kill(upper.pid, signal.SIGKILL if how == "kill" else signal.SIGINT)
            else:
                how = "complete (finished before the signal)"
        output = upper.communicate(timeout=120)[0]
        seconds = time.monotonic() - started
        if how.startswith("complete"):
            assert upper.returncode == 0, output
            up_times.append(seconds)
            assert "FAILED" not in requests_through_vip(provider, 2)
        if how != "interrupt":  # Ctrl-C: lab.up tears down what it started by itself
            assert invoke("lab.down", "--lab", str(file)).returncode == 0
        else:
            assert upper.returncode != 0 and "Traceback" not in output, output
        assert_clean("t-soak")
        rows.append(f"  cycle {cycle:2}: {how:<40} {seconds:5.1f} s")
    print(
        "\n".join(
            [
                "soak: lab.up / lab.down cycles on the seed lab",
                *rows,
                f"  lab.up median over {len(up_times)} completed boots: {statistics.median(up_times):.1f} s",
            ]
        )
    )


def test_ctrl_c_during_failover_stops_the_probe_and_collects_the_logs(builds, tmp_path):
    file = lab_file(tmp_path, "t-ctrlc")
    artifacts = LabPaths("t-ctrlc").latest
    provider = LocalProvider(spec.load(file), progress=lambda _: None)
    runner = start("test.failover", "--lab", str(file), "--scenario", "director-crash", "--destroy", "never")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(runner.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("crash server3" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any("crash server3" in line for line in lines), "".join(lines)
        started = time.time()
        os.kill(runner.pid, signal.SIGINT)
        runner.wait(timeout=120)
        reader.join(timeout=10)
        output = "".join(lines)
        assert runner.returncode != 0 and "Traceback" not in output, output
        assert "failover: FAILED" in output and "left up" in output  # --destroy never: kept
        assert (artifacts / "nodes" / "server4" / "keepalived.log").stat().st_mtime >= started
        probes = provider.remote.run("client", "pgrep -f '[h]ttp --rate' || true").stdout
        assert probes.strip() == "", f"the probe still runs on the client: {probes}"
    finally:
        provider.down()
    assert_clean("t-ctrlc")
