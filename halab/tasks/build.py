"""`invoke build`: keepalived and nginx compiled from pinned, verified source on this host."""

from __future__ import annotations

from halab import build as builds
from halab import pins
from halab.tasks import LAB_HELP, load, task


@task(name="all", default=True, help=LAB_HELP)
def all_(c, lab=None):
    """Fetch, verify and compile the lab's keepalived and nginx versions; a no-op when nothing changed.

    The versions come from the lab file; HALAB_KEEPALIVED_VERSION / HALAB_NGINX_VERSION
    override them on hosts that cannot fetch the file's (nginx 1.17.x is only upstream).
    """
    for name, version in load(lab).versions.model_dump().items():
        builds.ensure(pins.pin(name, version))


@task(name="sources")
def list_sources(c):
    """List every pinned source: name, version, sha256, URL, and whether it is cached or built."""
    for name, versions in pins.pinned().items():
        for version, pin in versions.items():
            state = "built" if pin.sha256 and builds.find(pin) else "-"
            print(f"{name:<11} {version:<8} {state:<6} {pin.sha256 or '(no verified sha256)'}  {pin.urls[0]}")
