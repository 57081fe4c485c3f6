"""The lab the acceptance suite checks, reached only through its provider (ssh_config).

Run by `invoke test.acceptance` (halab.prove.session.acceptance), the suite is handed the
provider itself (the AsRun plugin): the lab as that provider runs it, already booted,
with its logs and tear-down the caller's session's. Run by plain pytest, it proves every
shipped lab in turn, renamed t-<name> (so it never touches a lab of the user's) with
SUITE_VERSIONS, which any Debian host can fetch, each in a session of its own: booted and
torn down by the suite, whatever happened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
import testinfra

from halab import build, environment, paths, spec
from halab.prove.acceptance import SUITE_VERSIONS
from halab.prove.runner import Runner
from halab.prove.session import Session
from halab.providers import make
from halab.providers.base import Provider
from halab.spec import Lab, Versions


class AsRun:
    """A pytest plugin holding the provider of a lab that is up: the lab the suite checks."""

    def __init__(self, provider: Provider) -> None:
        self.as_run = provider


def _as_run(config: pytest.Config) -> Provider | None:
    """The provider handed in by the caller (pytest.main(plugins=[AsRun(...)])), if any."""
    return next((p.as_run for p in config.pluginmanager.get_plugins() if isinstance(p, AsRun)), None)


@dataclass
class LabCase:
    """A lab that is up: its provider (with the lab as run) and testinfra hosts over its ssh_config."""

    provider: Provider

    @property
    def lab(self) -> Lab:
        return self.provider.lab

    @cached_property
    def hosts(self) -> dict[str, testinfra.host.Host]:
        config = str(self.provider.ssh_config())
        return {name: testinfra.get_host(f"ssh://{name}", ssh_config=config) for name in self.lab.nodes}

    def host(self, node: str) -> testinfra.host.Host:
        return self.hosts[node]

    @property
    def client(self) -> str:
        return self.lab.client

    @property
    def masters(self) -> dict[str, str]:
        return self.lab.masters()

    def mac(self, node: str) -> str:
        return self.host(node).file(f"/sys/class/net/{self.lab.vrrp.interface}/address").content_string.strip()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("halab", "the acceptance suite's reports (used by `invoke test.acceptance`)")
    group.addoption("--report-json", metavar="PATH", help="also write each test's outcome as JSON to PATH")


# Shipped labs the suite does not boot: each has a lab test of its own (saying why), which
# boots it once for what it adds.
OWN_TEST = {"fast": "tests/lab/test_fast_failover.py (its stop, crash and idle soak)"}


def shipped_labs() -> list[Lab]:
    """Every shipped lab but OWN_TEST's, renamed t-<name>, with SUITE_VERSIONS."""
    labs = []
    for file in paths.shipped_labs():
        if file.stem in OWN_TEST:
            continue
        lab = spec.load(file)
        labs.append(lab.model_copy(update={"name": f"t-{lab.name}", "versions": Versions(**SUITE_VERSIONS)}))
    return labs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab_case" in metafunc.fixturenames:
        given = _as_run(metafunc.config)
        labs = [given.lab] if given else shipped_labs()
        metafunc.parametrize("lab_case", labs, ids=[lab.name for lab in labs], indirect=True, scope="session")


@pytest.fixture(scope="session")
def lab_case(request: pytest.FixtureRequest) -> Iterator[LabCase]:
    given = _as_run(request.config)
    if given is not None:
        _baseline(given)
        yield LabCase(given)
        return
    lab: Lab = request.param
    if os.geteuid() != 0:
        pytest.skip("needs root: the local provider creates network namespaces and user-mode Linux guests")
    build.ensure_all(SUITE_VERSIONS, progress=lambda _: None)
    provider = make(lab, "local", progress=lambda _: None)
    failed_before = request.session.testsfailed
    destroy = "never" if environment.keep_labs() else "booted"
    with Session(provider, "acceptance-suite", destroy=destroy, record=False, progress=lambda _: None) as session:
        _baseline(provider)
        yield LabCase(provider)
        session.passed = request.session.testsfailed == failed_before


def _baseline(provider: Provider) -> None:
    """The checks expect each VIP on its highest-priority director. With nopreempt the first
    election goes to whichever director's timer runs out first (boot order decides), and the
    VIP stays there: move it as the failover runs do before each scenario."""
    Runner(provider, progress=lambda _: None).restore_baseline()


class JsonReport:
    """Outcomes as JSON beside pytest's own --junitxml: what `ami.publish` reads as evidence."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.tests: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, {"test": report.nodeid, "outcome": "passed", "seconds": 0.0})
        entry["seconds"] = round(entry["seconds"] + report.duration, 3)
        entry.update({name: value for name, value in report.user_properties if report.when == "call"})
        if report.failed or (report.skipped and entry["outcome"] == "passed"):
            entry["outcome"] = "failed" if report.failed else "skipped"
            entry["message"] = str(report.longrepr)[-2000:]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        tests = list(self.tests.values())
        passed = exitstatus == 0 and bool(tests) and all(t["outcome"] != "failed" for t in tests)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"passed": passed, "tests": tests}, indent=1, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    """After a failure: where the nodes' logs are, and how to keep the labs next time."""
    if exitstatus != 0 and not environment.keep_labs():
        terminalreporter.write_line(
            f"the labs this run booted were torn down after their logs were collected into "
            f"{paths.labs()}/<lab>/artifacts/nodes/; set {environment.KEEP_LABS}=1 to keep them for debugging"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "root: needs root (namespaces, user-mode Linux); CI runs as root")
    if config.getoption("report_json", None):
        config.pluginmanager.register(JsonReport(config.getoption("report_json")), "halab-json-report")
