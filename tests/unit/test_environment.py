"""The environment variables the project reads (halab.environment): each in a strict form, a
value outside it refused in one line naming the variable, the value and what is allowed, by
the code that uses it. HALAB_HOME's own cases are in test_paths.py."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from halab import accelerator, paths, spec, versions
from halab.errors import UsageError
from halab.providers.vagrant.provider import VagrantProvider


def _refused(variable: str, value: str, match: str) -> str:
    """The refusal's pattern: the variable, the value (a long one cut, with its length), what is allowed."""
    shown = repr(value) if len(value) <= 80 else f"{value[:80]!r}... ({len(value)} characters)"
    return "^" + re.escape(f"{variable}={shown} is not allowed; allowed: ") + f".*{match}"


def test_a_version_override_that_is_no_version_is_refused_naming_the_variable(monkeypatch):
    """It used to surface as the lab file's `versions.nginx`, a field the file did not set."""
    monkeypatch.setenv("HALAB_NGINX_VERSION", "1.22.1\nx")
    with pytest.raises(UsageError, match=_refused("HALAB_NGINX_VERSION", "1.22.1\nx", "a version number like")):
        spec.load()
    monkeypatch.setenv("HALAB_NGINX_VERSION", "")  # empty: unset, the lab file's version holds
    assert spec.load().versions.nginx == "1.17.8"


@pytest.mark.parametrize("value", ["invoke\nrm -rf /", "invoke; reboot", "$(reboot)", "a  b", "x" * 201])
def test_a_launcher_that_is_no_plain_command_is_refused(value, monkeypatch):
    monkeypatch.setenv("HALAB_LAUNCHER", value)
    with pytest.raises(UsageError, match=_refused("HALAB_LAUNCHER", value, "a command")):
        versions.command({})


def test_a_plain_launcher_is_what_the_hints_name(monkeypatch):
    for value, expected in (
        ("./bootstrap", "./bootstrap"),
        (".venv/bin/python -m invoke", ".venv/bin/python -m invoke"),
    ):
        monkeypatch.setenv("HALAB_LAUNCHER", value)
        assert versions.command({}).startswith(expected)
    monkeypatch.setenv("HALAB_LAUNCHER", "")
    assert versions.command({}).startswith("invoke")


def test_the_hypervisor_is_checked_before_vagrant_is_asked(monkeypatch):
    monkeypatch.setenv("HALAB_VAGRANT_PROVIDER", "docker --debug")
    with pytest.raises(UsageError, match=_refused("HALAB_VAGRANT_PROVIDER", "docker --debug", "libvirt, virtualbox")):
        VagrantProvider(spec.load())
    monkeypatch.setenv("HALAB_VAGRANT_PROVIDER", "virtualbox")
    assert VagrantProvider(spec.load()).hypervisor == "virtualbox"


def test_the_accelerator_is_checked(monkeypatch):
    monkeypatch.setenv("HALAB_ACCELERATOR", "kvm\n")
    with pytest.raises(UsageError, match=_refused("HALAB_ACCELERATOR", "kvm\n", "kvm, tcg")):
        accelerator.choose([])


@pytest.mark.parametrize(("variable", "value"), [("HALAB_TIMINGS", "/tmp/times; reboot"), ("HALAB_KEEP_LABS", "yes")])
def test_the_suites_own_variables_are_checked_before_any_test_runs(variable, value, tmp_path):
    """HALAB_KEEP_LABS=0 used to keep the labs (any value did); a bad HALAB_TIMINGS failed after the run."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_pins.py"],
        cwd=paths.ROOT,
        env={"PATH": "/usr/bin:/bin", "HALAB_HOME": str(tmp_path), variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR and "Traceback" not in run.stderr, run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"ERROR: {variable}={value!r} is not allowed; allowed: ")
