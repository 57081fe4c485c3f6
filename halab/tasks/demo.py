"""`invoke demo`: the main job on the default lab, what the README's first command runs."""

from __future__ import annotations

from halab.prove.session import DESTROY_HELP
from halab.tasks import build, lab, task, test


@task(help={"destroy": DESTROY_HELP})
def demo(c, destroy="passing"):
    """The main job on the default lab: validate it, compile keepalived and nginx, render and
    check its files, boot it, run every failover scenario and print the table."""
    lab.validate(c)
    build.all_(c)
    lab.render_(c, config_test=True)
    test.failover_(c, destroy=destroy)
