"""`invoke demo`: the main job on the default lab, what the README's first command runs."""

from __future__ import annotations

from invoke import task

from halab.tasks import lab


@task
def demo(c):
    """Validate the default lab and render its files, checked by keepalived -t and nginx -t."""
    lab.validate(c)
    lab.render_(c, check=True)
