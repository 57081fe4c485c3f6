"""`invoke build`: keepalived and nginx compiled from pinned, verified source on this host."""

from __future__ import annotations

from halab import build as builds
from halab import pins, sources, stopwatch, versions
from halab.tasks import LAB_HELP, load, task


@task(name="all", default=True, help=LAB_HELP)
def all_(c, lab=None):
    """Fetch, verify and compile the lab's keepalived and nginx; a no-op when nothing changed.

    The versions come from the lab file; HALAB_KEEPALIVED_VERSION / HALAB_NGINX_VERSION
    override them on hosts that cannot fetch the file's (nginx 1.17.x is only upstream).
    A version this host cannot get is refused before anything is compiled, with the
    command that would work here.
    """
    model = load(lab)
    versions.strict(model, lab is not None)
    builds.ensure_all(model.versions.model_dump(), stopwatch.timed())


@task(name="sources")
def list_sources(c):
    """List every pinned source: its state here, where the fetch chain would get it, its sha256.

    "state" is built (a host build exists), cached (the verified tarball is in the cache)
    or -; "available here" asks the chain without downloading (answers are cached).
    """
    print(f"{'name':<11} {'version':<8} {'state':<7} {'available here':<58} sha256")
    for name, table in pins.pinned().items():
        for version, pin in table.items():
            state = "built" if pin.sha256 and builds.find(pin) else "cached" if sources.cached(pin).exists() else "-"
            where = sources.available(pin, progress=sources.print_nothing)
            answer = f"yes: {where}" if where else ("no (no verified sha256)" if not pin.sha256 else "no")
            print(f"{name:<11} {version:<8} {state:<7} {answer:<58} {pin.sha256 or '-'}")
