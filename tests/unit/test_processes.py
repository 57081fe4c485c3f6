"""Host processes found by a marker on their command line (halab.providers.local.processes)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from halab.errors import ProviderError
from halab.providers.local import netns
from halab.providers.local.processes import arguments, checked, processes


def test_a_lab_s_guests_are_counted_by_their_tags_not_their_processes():
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", f"umid=halab_t_lab_{node}"])
        for node in ("server1", "server1", "client")
    ]
    try:
        # Popen returns once a child execs (vfork), a moment before the kernel shows its new
        # command line: wait for all three to show it first.
        deadline = time.monotonic() + 10
        while len(processes("umid=halab_t_lab_")) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert arguments("umid=halab_t_lab_") == {"umid=halab_t_lab_server1", "umid=halab_t_lab_client"}
        assert len(processes("umid=halab_t_lab_")) == 3
        assert arguments("umid=halab_t_other_") == set()
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def test_a_failing_host_command_is_a_provider_error_naming_it_and_what_it_said():
    with pytest.raises(ProviderError, match=r"`sh -c echo no tap >&2; exit 3` failed \(3\): no tap"):
        netns.run("sh", "-c", "echo no tap >&2; exit 3")
    assert netns.run("sh", "-c", "exit 3", check=False).returncode == 3
    with pytest.raises(ProviderError, match=r"`false` failed \(1\)$"):
        checked(["false"])
