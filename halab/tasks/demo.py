"""`invoke demo`: the main job on the default lab, what the README's first command runs."""

from __future__ import annotations

from invoke import task

from halab.tasks import build, lab, test


@task(help={"destroy": "passing (default): tear the lab down if every scenario passed; always; never"})
def demo(c, destroy="passing"):
    """The main job on the default lab: validate it, compile keepalived and nginx, render and
    check its files, boot it, run every failover scenario and print the table."""
    lab.validate(c)
    build.all_(c)
    lab.render_(c, check=True)
    test.failover_(c, destroy=destroy)
