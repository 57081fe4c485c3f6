"""The README's tour without root runs as written: a command that errors fails the suite."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from halab import paths

README = paths.ROOT / "README.md"


def tour() -> list[str]:
    """The commands of the README's "A tour without root" block."""
    section = README.read_text().split("### A tour without root", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README lost its tour block"
    return [line.strip() for line in block[1].splitlines() if line.strip().startswith("invoke ")]


def test_the_tour_is_there_and_safe():
    commands = tour()
    assert len(commands) >= 6
    assert not [
        c for c in commands if "--help" not in c and re.search(r"lab\.up|lab\.down|demo|test\.(all|acceptance)\b", c)
    ]


@pytest.mark.parametrize("command", tour())
def test_a_tour_command_runs(command, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *shlex.split(command)[1:]],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HALAB_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip(), f"{command} printed nothing"
