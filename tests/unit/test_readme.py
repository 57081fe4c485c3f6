"""The README's tour without root, and every command block of the docs marked as safe without
root, run as written: a command that errors fails the suite."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from halab import paths

README = paths.ROOT / "README.md"
DOCS = paths.ROOT / "docs"
# What marks a docs block as safe: every command in it needs no root and boots nothing.
SAFE = "<!-- runs-without-root -->"
# The launcher the docs write; it installs what is missing (as root), then execs invoke with
# the same arguments, so without root the test runs invoke itself.
LAUNCHER = "./bootstrap"
# What no safe command may do, whatever a page says of it: boot, fault or tear down a lab, run
# the suite, bake an image or publish one.
UNSAFE = re.compile(
    r"\b(lab\.up|lab\.down|demo|fault\.\w+|test|test\.(all|acceptance|pipeline|unit|lint)|image\.base|ami\.\w+)\b(?!\.)"
    r"|\btest\.failover\b(?!.*--list-scenarios)|\bimage\.build\b(?!.*--dry-run)"
)


def tour() -> list[str]:
    """The commands of the README's "A tour without root" block."""
    section = README.read_text().split("### A tour without root", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README lost its tour block"
    return [line.strip() for line in block[1].splitlines() if line.strip().startswith("invoke ")]


def marked() -> list[str]:
    """Every line of every docs ```sh block right under the SAFE marker, in page order, once each."""
    lines = []
    for page in sorted(DOCS.rglob("*.md")):
        for block in re.finditer(rf"^{re.escape(SAFE)}\n```sh\n(.*?)```", page.read_text(), re.S | re.M):
            lines += [line.strip() for line in block[1].splitlines() if line.strip()]
    return list(dict.fromkeys(lines))


def run(arguments: list[str], home: str) -> subprocess.CompletedProcess[str]:
    """invoke with arguments from the checkout, as a plain user with a fresh HALAB_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *arguments],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HALAB_HOME": home},
    )


def test_the_tour_is_there_and_safe():
    commands = tour()
    assert len(commands) >= 6
    assert not [c for c in commands if "--help" not in c and UNSAFE.search(c)]


@pytest.mark.parametrize("command", tour())
def test_a_tour_command_runs(command, tmp_path):
    assert "--help" in command or not UNSAFE.search(command), "not run: it is no safe command"
    result = run(shlex.split(command)[1:], str(tmp_path / "home"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip(), f"{command} printed nothing"


def test_the_docs_mark_safe_commands_and_each_is_a_task_that_boots_nothing():
    lines = marked()
    assert len(lines) >= 6
    assert [line for line in lines if not line.startswith(f"{LAUNCHER} ")] == []
    assert [line for line in lines if UNSAFE.search(line)] == []


@pytest.mark.parametrize("command", marked())
def test_a_marked_docs_command_runs(command, tmp_path):
    assert command.startswith(f"{LAUNCHER} ") and not UNSAFE.search(command), "not run: it is no safe command"
    result = run(shlex.split(command, comments=True)[1:], str(tmp_path / "home"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip(), f"{command} printed nothing"


def test_the_docs_write_commands_with_one_launcher():
    """Pages say `./bootstrap TASK`; `invoke` is the README tour's alone (see its note)."""
    blocks = [b for page in DOCS.rglob("*.md") for b in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S)]
    assert blocks
    assert [line for b in blocks for line in b.splitlines() if re.match(r"\s*(\.venv/bin/)?invoke\b", line)] == []


def test_the_readme_links_stay_in_the_repository():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    assert links
    outside = [link for link in links if "://" in link or not (paths.ROOT / link).resolve().is_relative_to(paths.ROOT)]
    assert outside == []
    assert [link for link in links if not (paths.ROOT / link).exists()] == []
