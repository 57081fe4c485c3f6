"""`invoke demo`: the main job on the default lab, what the README's first command runs."""

from __future__ import annotations

from invoke import task

from halab.tasks import build, lab


@task
def demo(c):
    """Validate the default lab, compile its keepalived and nginx, render its files and check them."""
    lab.validate(c)
    build.all_(c)
    lab.render_(c, check=True)
