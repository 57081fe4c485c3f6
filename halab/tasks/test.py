"""`invoke test.*`: the project's own test suite and linters, and the acceptance and
failover runs on a lab (halab.prove.session does the work)."""

from __future__ import annotations

import secrets
import shlex
import sys
import time

from halab import environment, paths, stopwatch
from halab.errors import HalabError, UsageError
from halab.prove import campaign, scenarios, session
from halab.prove.results import Margin
from halab.spec import Lab
from halab.tasks import LAB_HELP, PROVIDER_HELP, lab_file, load, provider_for, task, words

RUN_HELP = {**LAB_HELP, **PROVIDER_HELP, "destroy": session.DESTROY_HELP}


@task
def lint(c):
    """ruff (lint and format check) and mypy on the package: what CI runs before the tests."""
    for command in ("ruff check .", "ruff format --check .", "mypy"):
        c.run(f"{sys.executable} -m {command}", echo=True)


@task(name="all", default=True, help={"args": 'extra pytest arguments, e.g. "-k render -x"'})
def all_(c, args=""):
    """Run the linters, then the whole suite: unit, config, build, lab, acceptance, failover (root).

    With HALAB_TIMINGS set to a file, the linters' time and each tier's are appended to it.
    """
    pytest = shlex.join([sys.executable, "-m", "pytest", *words(args)])  # before anything runs
    started = time.monotonic()
    lint(c)
    timings = environment.timings()
    if timings:
        with timings.open("a") as out:
            out.write(f"lint\t{time.monotonic() - started:.0f}\n")
    c.run(pytest, echo=True)


@task(help={"args": "extra pytest arguments"})
def unit(c, args=""):
    """Run the fast unit tests only: no root needed, nothing started on the host."""
    c.run(shlex.join([sys.executable, "-m", "pytest", "tests/unit", *words(args)]), echo=True)


@task(help={**RUN_HELP, "args": 'extra pytest arguments, e.g. "-k ipvs"'})
def acceptance(c, lab=None, provider="local", destroy="passing", args=""):
    """Check a running lab against the write-up, booting it first if needed.

    JUnit XML, JSON and the run's page (report.html: the checks with the packets they
    judged, the node logs) go to the run's folder in the lab's artifacts; its path is printed last.
    """
    extra = words(args)
    session.checked_destroy(destroy)
    running = provider_for(lab, provider, stopwatch.timed())
    if not session.acceptance(running, destroy, extra):
        raise HalabError(f"acceptance failed on lab {running.lab.name!r}")


@task(
    name="failover",
    help={
        **RUN_HELP,
        "scenario": "comma-separated scenario names (default: all but idle); see --list-scenarios",
        "list_scenarios": "print the lab's scenarios and their bounds, run nothing",
        "margin": Margin.HELP,
        "accept_unexercised": "report a phase whose fault the probe's traffic never met as 'not exercised' "
        "without failing the run (by default it fails: it proved nothing)",
        "format_": "table (default: at most 120 columns; the page and JSON keep every column) or json: "
        "failover.json whole on stdout, progress on stderr",
    },
)
def failover_(
    c,
    lab=None,
    provider="local",
    destroy="passing",
    scenario="",
    list_scenarios=False,
    margin="2s+20%",
    accept_unexercised=False,
    format_="table",
):
    """Run failover scenarios with a probe on the client and print what the VIP's users saw.

    A table (scenario, outage, failed requests, bound, verdict, findings), then the
    findings, in at most 120 columns (--format json: failover.json instead); JSON, JUnit
    XML, a PNG timeline per scenario and the run's page (report.html, its path printed last)
    in the run's folder in the lab's artifacts. A phase's verdict is "within" its protocol
    bound, "noise +N ms" when over it by less than the margin (a pass, said as such), FAIL,
    or NOT EXERCISED when the probe's traffic never met the fault (a real server no request
    went to: real-server scenarios aim at the server that answered the probe's baseline; a
    director not holding the client's VIP).
    """
    session.checked_destroy(destroy)
    slack = Margin.parse(margin)
    if format_ not in session.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(session.FORMATS)}; got {format_!r}")
    say = stopwatch.timed(print if format_ == "table" else _to_stderr)
    running = provider_for(lab, provider, say)
    chosen = scenarios.chosen(running.lab, scenario)
    if list_scenarios:
        _list(running.lab, chosen, scenarios.on_request(running.lab) if not scenario else [], slack)
        return
    runs = session.measure(
        running, chosen, destroy, say, margin=slack, accept_unexercised=accept_unexercised, form=format_
    )
    if not all(run.passed for run in runs):
        raise HalabError(f"failover failed on lab {running.lab.name!r}")


@task(
    name="chaos",
    help={
        **RUN_HELP,
        "seed": "the schedule's seed, a whole number (default: a random one, printed so the run can be replayed)",
        "duration": "about how long the schedule runs: 90, 90s, 3m, 1h (default 3m)",
        "plan": "print the schedule the seed gives and run nothing (the same seed, the same plan)",
        "margin": Margin.HELP,
    },
)
def chaos(c, lab=None, provider="local", destroy="passing", seed="", duration="3m", plan=False, margin="2s+20%"):
    """Run a seeded random schedule of the catalogue's faults under one continuous probe.

    Each step is a fault and its heal on a target the seed picks, then a quiet gap; every
    phase is judged as in test.failover (the invariants: the VIPs served again within each
    bound, end states, nothing left of a fault after its heal, connections, no flap while
    quiet). A step the traffic never met is reported as not exercised and fails nothing.
    The report is the failover report (JSON, JUnit, PNG timeline); the seed is printed with
    the command that replays the run.
    """
    chosen_seed = _seed(seed)
    seconds = campaign.duration(duration)
    slack = Margin.parse(margin)
    if plan:
        lab_model = load(lab)
        print(campaign.plan_text(lab_model, chosen_seed, campaign.plan(lab_model, chosen_seed, seconds)))
        return
    session.checked_destroy(destroy)
    say = stopwatch.timed()
    running = provider_for(lab, provider, say)
    steps = campaign.plan(running.lab, chosen_seed, seconds)
    print(campaign.plan_text(running.lab, chosen_seed, steps))
    where = f" --lab {shlex.quote(lab)}" if lab else ""
    replay = f"{environment.launcher()} test.chaos{where} --seed {chosen_seed} --duration {shlex.quote(duration)}"
    run = campaign.scenario(running.lab, chosen_seed, steps)
    try:
        runs = session.measure(running, [run], destroy, say, margin=slack, accept_unexercised=True)
    finally:
        print(f"seed {chosen_seed}; replay: {replay}")
    if not all(r.passed for r in runs):
        raise HalabError(f"the campaign (seed {chosen_seed}) broke an invariant on lab {running.lab.name!r}: see above")


def _seed(text: str) -> int:
    """--seed as given, or a fresh random one."""
    if not text:
        return secrets.randbelow(campaign.SEED_LIMIT)
    if not text.isdigit():
        raise UsageError(f"--seed takes a whole number from 0 to {campaign.SEED_LIMIT - 1}; got {text!r}")
    return campaign.seed(int(text))


def _to_stderr(message: str) -> None:
    """A progress line kept off stdout, which --format json keeps for the document alone."""
    print(message, file=sys.stderr)


def _list(lab: Lab, listed: list[scenarios.Scenario], requested: list[scenarios.Scenario], margin: Margin) -> None:
    """Each scenario, its phases, their bounds (and the margin over them) and expectations;
    then those that run only when named (`requested`), each saying how to name it."""
    print(f"margin over every bound: {margin}")
    for item in [*listed, *requested]:
        on_request = f" (on request: --scenario {item.name})" if item in requested else ""
        print(f"{item.name}: {item.description}{on_request}")
        for phase in item.phases:
            print(f"    {phase.name}: bound {phase.bound * 1000:.0f} ms ({phase.basis})")
            if scenarios.expectation(phase):
                print(f"        {scenarios.expectation(phase)}")


@task(
    help={
        **LAB_HELP,
        "os": "the OS to bake and boot (default: debian-12, what CI can get; rocky-9 needs its ISO and KVM)",
        "quick": "fail over once per fault primitive (service, crash, link), not the whole catalogue: "
        "the rest repeat a mechanism the local lab's suite covers (CI runs this form)",
    }
)
def pipeline(c, os="debian-12", lab=None, quick=False):
    """Run the whole image path for real: bake with Packer, boot with Vagrant, prove it.

    Base image, Packer bake, vagrant box add, lab.up --provider vagrant, acceptance,
    failover, destroy; each stage shows its elapsed time against its last run on this host;
    prints a table of the stages' times (also written to the artifacts) and the runs' pages.
    """
    from halab.pipeline import Pipeline

    run = Pipeline(os, lab_file(lab) if lab is not None else paths.DEFAULT_LAB, quick=quick)
    try:
        run.run()
    finally:  # interrupted too (Ctrl-C, CI's timeout): what ran, and the lab's destruction
        print(run.table())
        print(f"stage table: {run.provider.paths.pipeline / 'stages.txt'}")
        for page in run.reports:  # the acceptance run's page, then the failover run's
            print(f"report: {page}")
    if not run.passed:
        raise HalabError(f"pipeline failed for {os}: see the table above")
