"""One proving run on a lab, from boot to clean-up: the one place that decides them.

Boot the lab if it is not up; run the body (the acceptance suite, the failover
scenarios); then, whatever happened (a failure, Ctrl-C), collect every node's logs and
network state into the lab's artifacts, record the evidence and apply the destroy
policy. `invoke test.acceptance`, `invoke test.failover` and the acceptance suite's own
fixture all go through here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import TracebackType

from halab import environment, paths
from halab.errors import HalabError, UsageError
from halab.prove import artifacts, effective, evidence, findings, page, report, scenarios
from halab.prove.results import DEFAULT_MARGIN, Margin, ScenarioRun
from halab.prove.runner import Runner
from halab.prove.scenarios import Scenario
from halab.providers.base import Provider

# When to tear the lab down at the end: what each policy says, given (passed, booted here).
DESTROY: dict[str, Callable[[bool, bool], bool]] = {
    "passing": lambda passed, booted: passed and booted,  # keep a failed lab for debugging
    "booted": lambda passed, booted: booted,  # leave only what was already up
    "always": lambda passed, booted: True,
    "never": lambda passed, booted: False,
}
DESTROY_HELP = (
    "passing (default): tear the lab down if all passed and this run booted it, keep it for "
    "debugging otherwise; booted: tear down what this run booted, whatever the outcome; always; never"
)


def checked_destroy(destroy: str) -> str:
    """A --destroy value, refused when it is not a policy: tasks call it before any work starts."""
    if destroy not in DESTROY:
        raise UsageError(f"--destroy must be one of {', '.join(DESTROY)}; got {destroy!r}")
    return destroy


class Session:
    """A run of `what` on the provider's lab; use as a context manager and set `passed`."""

    def __init__(
        self,
        provider: Provider,
        what: str,
        destroy: str = "passing",
        record: bool = True,
        progress: Callable[[str], None] = print,
        substitutions: list[str] | None = None,
    ) -> None:
        checked_destroy(destroy)
        self.provider = provider
        self.substitutions = substitutions or []
        self.what = what
        self.destroy = destroy
        self.record = record
        self.progress = progress
        self.passed = False
        self.booted = False
        self._run: Path | None = None  # the run's own folder, made once the lab is up
        self.report: Path | None = None  # the run's HTML page, once finish wrote it

    def __enter__(self) -> Session:
        self.booted = not self.provider.running()
        self.provider.up()
        self._run = self.provider.paths.new_run(self.what)  # now the latest
        return self

    @property
    def artifacts(self) -> Path:
        """This run's folder: there is none before the lab is up."""
        if self._run is None:
            raise RuntimeError("a session's artifacts exist once it is entered")
        return self._run

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.passed = self.passed and kind is None
        self.finish()

    def finish(self) -> None:
        """Logs, evidence, then the destroy policy: also after a failure or Ctrl-C."""
        lab = self.provider.lab
        try:
            artifacts.collect(self.provider, self.artifacts)
        except HalabError as exc:
            self.progress(f"could not collect the nodes' logs: {exc}")
        try:
            self.report = page.write(lab, self.artifacts, self.what, self.passed, self.substitutions)
        except Exception as exc:  # the page is a view of the run: whatever broke it, the destroy policy still applies
            self.progress(f"could not write the run's page: {exc}")
        if self.record:
            evidence.record(
                self.what, lab.name, self.passed, lab.versions.model_dump(), self.artifacts, self.substitutions
            )
        self.progress(
            f"{self.what}: {'passed' if self.passed else 'FAILED'}; reports and node logs in {self.artifacts}"
        )
        if DESTROY[self.destroy](self.passed, self.booted):
            self.provider.down()
            self.progress(f"lab {lab.name!r} torn down")
        else:
            run = environment.launcher()
            self.progress(
                f"lab {lab.name!r} left up: `{run} lab.status`, `{run} lab.ssh NODE`, `{run} lab.down` when done"
            )


def acceptance(provider: Provider, destroy: str = "passing", args: list[str] | None = None) -> bool:
    """The acceptance suite (pytest + testinfra, shipped in halab.prove.acceptance) on the lab
    as the provider runs it, in this process: one preflight, one log collection (this
    session's), and the suite sees the provider's own model (its NIC names, its box), never a
    file to re-read. JUnit XML and JSON land in the lab's artifacts."""
    import pytest

    from halab.prove.acceptance.conftest import AsRun

    with Session(provider, "acceptance", destroy) as session:
        out = session.artifacts
        command = [
            str(paths.ACCEPTANCE / "test_cluster.py"),
            f"--rootdir={paths.ROOT}",
            "-p",
            "no:cacheprovider",
            "-v",  # one line per check with its result
            "-rs",  # and why each skipped check does not apply to this lab ("n/a: ...")
            f"--junitxml={out / 'acceptance.xml'}",
            f"--report-json={out / 'acceptance.json'}",
            *(args or []),
        ]
        session.passed = pytest.main(command, plugins=[AsRun(provider)]) == 0
    if session.report:
        print(f"report: {session.report}")
    return session.passed


FORMATS = ("table", "json")  # what test.failover prints at the end: the table, or failover.json whole


def measure(
    provider: Provider,
    chosen: list[Scenario],
    destroy: str = "passing",
    progress: Callable[[str], None] = print,
    substitutions: list[str] | None = None,
    margin: Margin = DEFAULT_MARGIN,
    accept_unexercised: bool = False,
    form: str = "table",
) -> list[ScenarioRun]:
    """Run the failover scenarios, write JSON, JUnit and a PNG per scenario (then the run's
    page, as the session ends); once the lab is dealt with, print the table, the versions
    substituted (if any) and the findings, or with form "json" failover.json whole.
    accept_unexercised: a phase whose fault the traffic never met is reported, not failed.

    A scenario that raises ends the run (the lab's state is then unknown): it is reported
    with its error, the ones after it as not run. Whatever stops the run (Ctrl-C too), the
    scenarios that ran are still written and printed.
    """
    runs: list[ScenarioRun] = []
    checks: list[effective.Check] = []
    differ: list[str] = []
    found: list[findings.Finding] = []
    notes = substitutions or []
    current = ""  # the scenario under way: a Ctrl-C there loses its phases, which must be said
    session = Session(provider, "failover", destroy, progress=progress, substitutions=notes)
    try:
        with session:
            try:
                checks = effective.read(provider)
                judged, differ = effective.applied(provider.lab, checks)
                for difference in differ:
                    progress(f"{difference}: the bounds use keepalived's")
                chosen = scenarios.rebuilt(judged, chosen) if differ else chosen
                runner = Runner(provider, progress, margin, accept_unexercised)
                for scenario in chosen:
                    current = scenario.name
                    runs.append(runner.run(scenario))
                    current = ""
                    if runs[-1].requests:
                        report.plot(runs[-1], session.artifacts / f"failover-{scenario.name}.png")
                    if runs[-1].error:
                        break
                session.passed = len(runs) == len(chosen) and all(run.passed for run in runs)
            finally:  # before the session ends: its page shows them
                if runs or current:
                    ran = {"keepalived_checks": [asdict(check) for check in checks], "differ": differ}
                    found = _results(provider, session.artifacts, runs, chosen, notes, current, margin, ran)
    finally:
        if runs or current:
            _show(session, runs, found, margin, form)
    return runs


def _results(
    provider: Provider,
    out: Path,
    runs: list[ScenarioRun],
    chosen: list[Scenario],
    notes: list[str],
    interrupted: str = "",
    margin: Margin = DEFAULT_MARGIN,
    ran: dict | None = None,
) -> list[findings.Finding]:
    """Write failover.json and failover.xml into the run's folder (out); the findings."""
    lab = provider.lab
    found = findings.of(lab, runs)
    context = {
        "versions": lab.versions.model_dump(),
        "substitutions": notes,
        "settings": findings.settings(lab),
        "not_run": [s.name for s in chosen[len(runs) + bool(interrupted) :]],
        "interrupted": interrupted,
        "margin": str(margin),
        # The lab as it ran (what the verdicts were judged against) and a digest to compare runs by.
        "as_run": (as_run := lab.model_dump(mode="json", by_alias=True)),
        "as_run_sha256": hashlib.sha256(json.dumps(as_run, sort_keys=True).encode()).hexdigest(),
        **(ran or {}),  # the checks as keepalived ran them, and where the file differed
    }
    report.write_json(runs, lab.name, out / "failover.json", found, context)
    report.write_junit(runs, lab.name, out / "failover.xml", found, context)
    return found


def _show(session: Session, runs: list[ScenarioRun], found: list[findings.Finding], margin: Margin, form: str) -> None:
    """What a run prints last: the table, the margin, the versions substituted, the findings
    and the page's path; with form "json", failover.json whole (the path then goes to stderr)."""
    written = session.artifacts / "failover.json"
    if not written.is_file():  # writing it failed: its error is what the run shows
        return
    page_line = f"report: {session.report}" if session.report else "report: none (the page could not be written)"
    if form == "json":
        print(written.read_text(), end="")
        print(page_line, file=sys.stderr)
        return
    data = json.loads(written.read_text())
    terminal = sys.stdout.isatty()
    print("\n" + report.table(runs, found, data["not_run"], data["interrupted"], terminal=terminal))
    print(f"margin: {margin} (a phase over its bound by less passes as noise; --margin sets it)")
    for note in session.substitutions:
        print(f"versions: {note}")
    if report.split_text(runs):
        print(report.split_text(runs))
    if found:
        print(report.findings_text(found))
    if report.notify_text(runs):
        print(report.notify_text(runs))
    print(page_line)
