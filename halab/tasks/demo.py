"""`invoke demo`: the main job on the default lab, what the README's first command runs."""

from __future__ import annotations

from halab import build, environment, stopwatch, versions
from halab.errors import HalabError
from halab.prove import scenarios, session
from halab.providers import make
from halab.tasks import LAB_HELP, load, task
from halab.tasks import lab as lab_tasks


@task(
    help={
        **LAB_HELP,
        "destroy": session.DESTROY_HELP,
        "strict_versions": "refuse, instead of substituting, a default version this host cannot get",
    }
)
def demo(c, lab=None, destroy="passing", strict_versions=False):
    """Validate, compile, boot and fail over the default lab, then print what its users saw.

    In order: validate the lab, compile keepalived and nginx, render and config-test its
    files, boot it, run every failover scenario and print the table, the findings and the
    path of the run's HTML page.
    A default version this host cannot fetch (the write-up's nginx 1.17.8 lives only
    upstream) is replaced by the nearest pinned one it can, and the run says so; with
    --strict-versions it refuses instead.
    """
    session.checked_destroy(destroy)
    say = stopwatch.timed()
    model = load(lab)
    lab_tasks.summary(model)
    choices = versions.resolve(model, lab is not None, substitute=not strict_versions, progress=say)
    notes = [choice.sentence() for choice in choices if choice.substituted]
    for note in notes:
        print(f"\n*** versions: {note} ***\n")
    _day_two(choices)
    model = versions.applied(model, choices)
    build.ensure_all(model.versions.model_dump(), say)
    lab_tasks.rendered(model, config_test=True)
    running = make(model, "local", say)
    runs = session.measure(running, scenarios.scenarios(model), destroy, say, notes)  # ends with the page's path
    if not all(run.passed for run in runs):
        raise HalabError(f"failover failed on lab {model.name!r}")


def _day_two(choices: list[versions.Choice]) -> None:
    """After a substitution, the other tasks need the same choice (they never substitute)."""
    chosen = {choice.name: choice.used for choice in choices if choice.substituted}
    if chosen:
        settings = " ".join(
            f"{environment.version_variable(name)}={version}" for name, version in sorted(chosen.items())
        )
        print(f"for the other tasks on this lab (lab.up, test.failover, ...): export {settings}")
