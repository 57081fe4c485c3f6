"""Host processes found by a marker on their command line (halab.providers.local.processes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from halab.errors import ProviderError
from halab.providers.local import netns
from halab.providers.local.processes import arguments, checked, processes


def test_a_lab_s_guests_are_counted_by_their_tags_not_their_processes():
    sleepers = [
        subprocess.Popen(
            [sys.executable, "-c", "import time; print(flush=True); time.sleep(30)", f"umid=halab_t_lab_{node}"],
            stdout=subprocess.PIPE,
        )
        for node in ("server1", "server1", "client")
    ]
    try:
        for sleeper in sleepers:  # each has run its command line (just forked, it still shows pytest's)
            assert sleeper.stdout is not None and sleeper.stdout.readline()
        assert arguments("umid=halab_t_lab_") == {"umid=halab_t_lab_server1", "umid=halab_t_lab_client"}
        assert len(processes("umid=halab_t_lab_")) == 3
        assert arguments("umid=halab_t_other_") == set()
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.communicate()  # reaps it and closes its pipe


def test_a_failing_host_command_is_a_provider_error_naming_it_and_what_it_said():
    with pytest.raises(ProviderError, match=r"`sh -c echo no tap >&2; exit 3` failed \(3\): no tap"):
        netns.run("sh", "-c", "echo no tap >&2; exit 3")
    assert netns.run("sh", "-c", "exit 3", check=False).returncode == 3
    with pytest.raises(ProviderError, match=r"`false` failed \(1\)$"):
        checked(["false"])
