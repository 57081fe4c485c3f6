"""Shared fixtures. Fixtures start nothing at import; whatever one starts, it stops."""

from __future__ import annotations

import os

import pytest

from halab import build, sources

# The versions the suite compiles and runs. The lab's default nginx (1.17.8, the
# write-up's) exists only on nginx.org, which CI machines cannot reach; the Debian
# source archive has keepalived 2.2.7 and nginx 1.22.1, byte-identical to upstream.
TEST_VERSIONS = {"keepalived": "2.2.7", "nginx": "1.22.1"}


def needs_root(why: str):
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"needs root: {why}")


@pytest.fixture(scope="session")
def builds() -> dict[str, build.Build]:
    """From-source keepalived and nginx (compiled once, then cached across runs)."""
    return {name: build.ensure(sources.pin(name, version)) for name, version in TEST_VERSIONS.items()}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("halab", "the acceptance suite's lab (used by `invoke test.acceptance`)")
    group.addoption("--lab", action="append", default=[], metavar="FILE",
                    help="lab file to check, as it is (repeatable); default: the shipped labs, renamed "
                         "t-<name> and with the suite's versions, each booted and torn down by the suite")
    group.addoption("--provider", default="local", help="provider running the lab (default: local)")
    group.addoption("--report-json", metavar="PATH", help="also write each test's outcome as JSON to PATH")


class JsonReport:
    """Outcomes as JSON beside pytest's own --junitxml: what `ami.publish` reads as evidence."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tests: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, {"test": report.nodeid, "outcome": "passed", "seconds": 0.0})
        entry["seconds"] = round(entry["seconds"] + report.duration, 3)
        if report.failed or (report.skipped and entry["outcome"] == "passed"):
            entry["outcome"] = "failed" if report.failed else "skipped"
            entry["message"] = str(report.longrepr)[-2000:]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        import json
        from pathlib import Path

        tests = list(self.tests.values())
        passed = exitstatus == 0 and bool(tests) and all(t["outcome"] != "failed" for t in tests)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).write_text(json.dumps({"passed": passed, "tests": tests}, indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("report_json", None):
        config.pluginmanager.register(JsonReport(config.getoption("report_json")), "halab-json-report")
