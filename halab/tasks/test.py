"""`invoke test.*`: the project's test suites, and the acceptance and failover runs on a lab."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

from invoke import Exit, task

from halab import artifacts, evidence, failover, paths, report
from halab.paths import LabPaths
from halab.providers import NAMES, make
from halab.providers.base import Provider, ProviderError
from halab.spec import Lab
from halab.tasks.lab import LAB_HELP, load

DESTROY = ("passing", "always", "never")
RUN_HELP = {
    **LAB_HELP,
    "provider": f"what runs the lab: {', '.join(NAMES)} (default: local)",
    "destroy": "passing (default): tear the lab down if all passed and this task booted it, keep it "
               "for debugging otherwise; always; never",
}


@task(name="all", default=True, help={"args": "extra pytest arguments, e.g. \"-k render -x\""})
def all_(c, args=""):
    """Run the whole test suite: unit, config, build, lab, and acceptance with failover (as root)."""
    c.run(f"python -m pytest {args}", echo=True)


@task(help={"args": "extra pytest arguments"})
def unit(c, args=""):
    """Run the fast unit tests only: no root needed, nothing started on the host."""
    c.run(f"python -m pytest tests/unit {args}", echo=True)


@task(help={**RUN_HELP, "args": "extra pytest arguments, e.g. \"-k ipvs\""})
def acceptance(c, lab=None, provider="local", destroy="passing", args=""):
    """Check a running lab against the write-up (booting it first if needed); JUnit XML and JSON
    go to the lab's artifacts directory."""

    def checks(model: Lab, _: Provider, out: Path) -> bool:
        command = [sys.executable, "-m", "pytest", str(paths.ROOT / "tests" / "acceptance" / "test_cluster.py"),
                   "--lab", str(lab or paths.DEFAULT_LAB), "--provider", provider, "-p", "no:cacheprovider",
                   f"--junitxml={out / 'acceptance.xml'}", f"--report-json={out / 'acceptance.json'}", *args.split()]
        return subprocess.run(command, cwd=paths.ROOT).returncode == 0

    _on_lab(lab, provider, destroy, "acceptance", checks)


@task(name="failover", help={**RUN_HELP, "scenario": "comma-separated scenario names (default: all); see --list-scenarios",
            "list_scenarios": "print the lab's scenarios and their bounds, run nothing"})
def failover_(c, lab=None, provider="local", destroy="passing", scenario="", list_scenarios=False):
    """Run failover scenarios with a probe on the client; print a table (scenario, outage,
    failed requests, bound, verdict) and write JSON, JUnit XML and a PNG timeline per scenario."""
    model = load(lab)
    chosen = _chosen(model, scenario)
    if list_scenarios:
        for item in chosen:
            print(f"{item.name}: {item.description}")
            for phase in item.phases:
                print(f"    {phase.name}: bound {phase.bound * 1000:.0f} ms ({phase.basis})")
        return

    def measure(model: Lab, running: Provider, out: Path) -> bool:
        runner = failover.Runner(model, running)
        runs = []
        for item in chosen:
            runs.append(runner.run(item))
            report.plot(runs[-1], out / f"failover-{item.name}.png")
        print(report.table(runs))
        report.write_json(runs, model.name, out / "failover.json")
        report.write_junit(runs, model.name, out / "failover.xml")
        return all(run.passed for run in runs)

    _on_lab(lab, provider, destroy, "failover", measure)



def _chosen(model: Lab, names: str) -> list[failover.Scenario]:
    known = failover.scenarios(model)
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in {s.name for s in known}]
    if unknown:
        raise Exit(f"unknown scenario {', '.join(unknown)}; known: {', '.join(s.name for s in known)}", code=2)
    return [s for s in known if not wanted or s.name in wanted]


def _on_lab(lab: str | None, provider: str, destroy: str, what: str,
            body: Callable[[Lab, Provider, Path], bool]) -> None:
    """Boot the lab if it is not up, run body, collect the nodes' logs, then apply --destroy."""
    if destroy not in DESTROY:
        raise Exit(f"--destroy must be one of {', '.join(DESTROY)}; got {destroy!r}", code=2)
    model = load(lab)
    out = LabPaths(model.name).artifacts
    try:
        running = make(model, provider)
        booted = not running.running()
        running.up()
    except ProviderError as exc:
        raise Exit(str(exc), code=1) from None
    passed = False
    try:
        passed = body(model, running, out)
    finally:
        artifacts.collect(model, running, out)
        evidence.record(what, model.name, passed, model.versions.model_dump(), out)
        print(f"{what}: {'passed' if passed else 'FAILED'}; reports and node logs in {out}")
        if destroy == "always" or (destroy == "passing" and passed and booted):
            running.down()
            print(f"lab {model.name!r} torn down")
        else:
            print(f"lab {model.name!r} left up: `invoke lab.status`, `invoke lab.ssh NODE`, `invoke lab.down` when done")
    if not passed:
        raise Exit(f"{what} failed on lab {model.name!r}", code=1)
