"""`invoke test.*`: the project's own test suites."""

from __future__ import annotations

from invoke import task


@task(name="all", default=True, help={"args": "extra pytest arguments, e.g. \"-k render -x\""})
def all_(c, args=""):
    """Run the whole test suite: unit, config and (as root) lab tests."""
    c.run(f"python -m pytest {args}", echo=True)


@task(help={"args": "extra pytest arguments"})
def unit(c, args=""):
    """Run the fast unit tests only: no root needed, nothing started on the host."""
    c.run(f"python -m pytest tests/unit {args}", echo=True)
