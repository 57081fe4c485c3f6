"""The benchmarks in quick mode, so a broken benchmark fails CI (they assert nothing about speed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from halab import paths
from halab.remote import Remote
from tests.fixtures import judged, lab_file, needs_root, phase_of, probe_record, task_environment

BENCH = paths.ROOT / "bench"


def bench(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """A benchmark script as a user runs it."""
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=task_environment(),
    )


def module(name: str) -> ModuleType:
    """A benchmark script imported as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@needs_root("compiling installs the build dependencies with apt-get")
@pytest.mark.build
def test_build_times_quick_prints_cold_warm_and_their_ratio(builds):
    result = bench("build_times.py", "--quick", timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from the cache" in result.stdout and "round 1/1" in result.stdout, result.stdout
    assert "warm / cold:" in result.stdout, result.stdout


@needs_root("the lab creates network namespaces and user-mode Linux guests with taps")
@pytest.mark.root
def test_lab_times_quick_boots_measures_and_tears_down(builds, tmp_path):
    result = bench("lab_times.py", "--quick", "--lab", str(lab_file(tmp_path, "t-bench")), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab.up (booted, VRRP converged)" in result.stdout and "ratio VIP/direct" in result.stdout, result.stdout


def test_a_lab_that_fails_a_request_stops_the_benchmark(tmp_path, fake_ssh):
    fake_ssh.answer("curl", stdout="100.0 101.5 3\n")
    with pytest.raises(SystemExit, match=r"not serving: 3 of 40 requests from client to http://172.25.1.100/ failed"):
        module("lab_times").rate(Remote(tmp_path / "ssh_config"), "client", "http://172.25.1.100/", 40)


def test_a_client_that_cannot_run_the_requests_stops_the_benchmark(tmp_path, fake_ssh):
    fake_ssh.answer("curl", rc=255)
    with pytest.raises(SystemExit, match="not serving: client could not run the requests"):
        module("lab_times").rate(Remote(tmp_path / "ssh_config"), "client", "http://172.25.1.100/", 40)


def test_a_serving_lab_gives_requests_per_second(tmp_path, fake_ssh):
    fake_ssh.answer("curl", stdout="100.0 102.0 0\n")
    assert module("lab_times").rate(Remote(tmp_path / "ssh_config"), "client", "http://172.25.1.100/", 40) == 20.0


def test_the_failover_comparison_puts_each_labs_figures_in_its_column():
    from halab.prove.results import ScenarioRun

    def run(scenario: str, outage_until: float, held: tuple[int, int]) -> ScenarioRun:
        requests = [probe_record(t / 20, not 1.0 <= t / 20 < outage_until) for t in range(100)]
        result = judged(phase_of("fault", 0.4, kind="down"), 1.0, 5.0, requests)
        result.survived, result.held = held
        return ScenarioRun(scenario, "", 0.0, 0.0, {}, requests, [result])

    seed = [run("keepalived-stop", 1.9, (0, 8)), run("director-crash", 4.6, (0, 8))]
    fast = [run("keepalived-stop", 1.1, (8, 8)), run("director-crash", 1.35, (8, 8))]
    lines = module("failover_compare").comparison([("seed", seed), ("fast", fast)], 300)
    assert lines[0].split() == ["seed", "fast"]
    crash = next(line for line in lines if "crash outage" in line)
    assert "3650 ms (bound 400)" in crash and "400 ms (bound 400)" in crash
    assert "0/8" in next(line for line in lines if "survived stop" in line)
    assert "not measured" in next(line for line in lines if "idle 300 s" in line)


@needs_root("the labs create network namespaces and user-mode Linux guests with taps")
@pytest.mark.root
def test_methods_quick_prints_a_rate_per_method(builds):
    result = bench("methods.py", "--quick", "--prefix", "t-bench-", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["DR"], ["TUN"], ["NAT"])]
    assert [row[0] for row in rows] == ["DR", "TUN", "NAT"], result.stdout
    assert all(float(row[1]) > 0 and float(row[2]) > 0 for row in rows), result.stdout


def test_a_method_whose_lab_fails_a_request_stops_the_benchmark(tmp_path, fake_ssh):
    fake_ssh.answer("python3", stdout='{"done": 97, "failed": 3, "seconds": 1.5}\n')
    with pytest.raises(SystemExit, match=r"not serving: 3 of 100 requests from client to 172.25.1.100 failed"):
        module("methods").rate(Remote(tmp_path / "ssh_config"), "client", "172.25.1.100", 80, 100, 4)


def test_a_method_whose_load_cannot_run_stops_the_benchmark(tmp_path, fake_ssh):
    fake_ssh.answer("python3", rc=255)
    with pytest.raises(SystemExit, match="not serving: client could not run the load"):
        module("methods").rate(Remote(tmp_path / "ssh_config"), "client", "172.25.1.100", 80, 100, 4)


def test_a_serving_method_gives_requests_per_second(tmp_path, fake_ssh):
    fake_ssh.answer("python3", stdout='{"done": 100, "failed": 0, "seconds": 2.0}\n')
    assert module("methods").rate(Remote(tmp_path / "ssh_config"), "client", "172.25.1.100", 80, 100, 4) == 50.0


@needs_root("boots the seed lab (renamed t-bench-loss) and shapes a director's traffic")
@pytest.mark.build
def test_advert_loss_quick_prints_measured_and_predicted_and_a_curve(builds, tmp_path):
    curve = tmp_path / "curve.png"
    result = bench("advert_loss.py", "--quick", "--prefix", "t-bench-", "--png", str(curve), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["50"]]
    assert len(rows) == 1, result.stdout
    measured, predicted, taken, seen = float(rows[0][1]), float(rows[0][2]), int(rows[0][3]), int(rows[0][4])
    assert predicted == pytest.approx(60 * 0.5 * 0.5**3, abs=0.01)  # seed: k = 3 adverts in a row
    assert measured == pytest.approx(taken * 60 / 20)
    assert seen <= taken  # every takeover seen holding the VIP also advertised
    assert curve.stat().st_size > 0


def test_advert_loss_refuses_rates_that_are_not_percentages():
    result = bench("advert_loss.py", "--rates", "50,abc", timeout=60)
    assert result.returncode != 0 and "--rates: '50,abc' is not comma-separated percentages" in result.stderr
    result = bench("advert_loss.py", "--rates", "150", timeout=60)
    assert result.returncode != 0 and "--rates must each be 0 to 99" in result.stderr
