"""`invoke test.*`: the project's own test suite and linters, and the acceptance and
failover runs on a lab (halab.prove.session does the work)."""

from __future__ import annotations

import sys
from pathlib import Path

from halab import paths, stopwatch
from halab.errors import HalabError, UsageError
from halab.prove import failover, session
from halab.tasks import LAB_HELP, PROVIDER_HELP, provider_for, task

RUN_HELP = {**LAB_HELP, **PROVIDER_HELP, "destroy": session.DESTROY_HELP}


@task
def lint(c):
    """ruff (lint and format check) and mypy on the package: what CI runs before the tests."""
    for command in ("ruff check .", "ruff format --check .", "mypy"):
        c.run(f"{sys.executable} -m {command}", echo=True)


@task(name="all", default=True, help={"args": 'extra pytest arguments, e.g. "-k render -x"'})
def all_(c, args=""):
    """Run the linters, then the whole suite: unit, config, build, lab, acceptance, failover (root)."""
    lint(c)
    c.run(f"{sys.executable} -m pytest {args}", echo=True)


@task(help={"args": "extra pytest arguments"})
def unit(c, args=""):
    """Run the fast unit tests only: no root needed, nothing started on the host."""
    c.run(f"{sys.executable} -m pytest tests/unit {args}", echo=True)


@task(help={**RUN_HELP, "args": 'extra pytest arguments, e.g. "-k ipvs"'})
def acceptance(c, lab=None, provider="local", destroy="passing", args=""):
    """Check a running lab against the write-up, booting it first if needed.

    JUnit XML and JSON go to the lab's artifacts directory.
    """
    session.checked_destroy(destroy)
    running = provider_for(lab, provider, stopwatch.timed())
    if not session.acceptance(running, Path(lab or paths.DEFAULT_LAB), destroy, args.split()):
        raise HalabError(f"acceptance failed on lab {running.lab.name!r}")


@task(
    name="failover",
    help={
        **RUN_HELP,
        "scenario": "comma-separated scenario names (default: all); see --list-scenarios",
        "list_scenarios": "print the lab's scenarios and their bounds, run nothing",
    },
)
def failover_(c, lab=None, provider="local", destroy="passing", scenario="", list_scenarios=False):
    """Run failover scenarios with a probe on the client and print what the VIP's users saw.

    A table (scenario, outage, failed requests, bound, verdict, findings), then the
    findings; JSON, JUnit XML and a PNG timeline per scenario in the lab's artifacts.
    """
    session.checked_destroy(destroy)
    say = stopwatch.timed()
    running = provider_for(lab, provider, say)
    chosen = _chosen(failover.scenarios(running.lab), [failover.soak(running.lab)], scenario)
    if list_scenarios:
        for item in chosen if scenario else [*chosen, failover.soak(running.lab)]:
            print(f"{item.name}: {item.description}" + ("" if item in chosen else " (on request: --scenario idle)"))
            for phase in item.phases:
                print(f"    {phase.name}: bound {phase.bound * 1000:.0f} ms ({phase.basis})")
                if failover.expectation(phase):
                    print(f"        {failover.expectation(phase)}")
        return
    runs = session.measure(running, chosen, destroy, say)
    if not all(run.passed for run in runs):
        raise HalabError(f"failover failed on lab {running.lab.name!r}")


@task(
    help={
        **LAB_HELP,
        "os": "the OS to bake and boot (default: debian-12, what CI can get; rocky-9 needs its ISO and KVM)",
    }
)
def pipeline(c, os="debian-12", lab=None):
    """Run the whole image path for real: bake with Packer, boot with Vagrant, prove it.

    Base image, Packer bake, vagrant box add, lab.up --provider vagrant, acceptance,
    failover, destroy; prints a table of the stages' times and writes it to the artifacts.
    """
    from halab.pipeline import Pipeline

    run = Pipeline(os, Path(lab or paths.DEFAULT_LAB))
    try:
        run.run()
    finally:  # interrupted too (Ctrl-C, CI's timeout): what ran, and the lab's destruction
        print(run.table())
        print(f"stage table: {run.provider.paths.pipeline / 'stages.txt'}")
    if not run.passed:
        raise HalabError(f"pipeline failed for {os}: see the table above")


def _chosen(known: list[failover.Scenario], on_request: list[failover.Scenario], names: str) -> list[failover.Scenario]:
    """The scenarios named (any of known + on_request), or every one of known when none is."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    every = known + on_request
    unknown = [name for name in wanted if name not in {s.name for s in every}]
    if unknown:
        raise UsageError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(s.name for s in every)}")
    return [s for s in every if s.name in wanted] if wanted else known
