"""Suite-wide: the wall time of each test tier, printed after the run (and appended to the
file HALAB_TIMINGS names, one `tier<TAB>seconds` line each, which CI's budget table reads).

A tier is the folder under tests/ (unit, config, build, lab, bench), or `acceptance` for
halab/prove/acceptance; a test's time includes its setup and teardown, so the labs a tier
boots count in that tier.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from halab import environment
from halab.errors import UsageError

_started: dict[str, float] = {}
_tiers: defaultdict[str, float] = defaultdict(float)
_tests: dict[str, float] = {}
SLOWEST = 15  # the tests named under the tiers: where a budget cut would start


def _tier(nodeid: str) -> str:
    parts = Path(nodeid.split("::", maxsplit=1)[0]).parts
    if parts[:1] == ("tests",) and len(parts) > 2:
        return parts[1]
    return "acceptance" if "acceptance" in parts else parts[0]


def pytest_configure(config: pytest.Config) -> None:
    """The suite's own variables, checked before any test runs: a bad one is one line, not an
    error after the whole run (HALAB_TIMINGS) or a lab kept by mistake (HALAB_KEEP_LABS)."""
    try:
        environment.timings()
        environment.keep_labs()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_runtest_logstart(nodeid: str) -> None:
    _started[nodeid] = time.monotonic()


def pytest_runtest_logfinish(nodeid: str) -> None:
    seconds = time.monotonic() - _started.pop(nodeid, time.monotonic())
    _tiers[_tier(nodeid)] += seconds
    _tests[nodeid] = seconds


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if len(_tiers) < 2:
        return
    terminalreporter.section("time per tier")
    for tier, seconds in _tiers.items():
        terminalreporter.write_line(f"{tier:<12} {seconds / 60:5.1f} min")
    terminalreporter.write_line(f"the {SLOWEST} slowest tests (setup and teardown included):")
    for nodeid, seconds in sorted(_tests.items(), key=lambda item: -item[1])[:SLOWEST]:
        terminalreporter.write_line(f"  {seconds:7.1f} s  {nodeid}")
    timings = environment.timings()
    if timings:
        with timings.open("a") as out:
            out.writelines(f"{tier}\t{seconds:.0f}\n" for tier, seconds in _tiers.items())
