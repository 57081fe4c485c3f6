"""halab.remote: the one way a command reaches a node (here, an ssh stand-in on PATH)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from halab.errors import ProviderError
from halab.remote import UNREACHABLE, Remote


def test_a_command_goes_through_the_lab_s_ssh_config(fake_ssh):
    remote = Remote(Path("/labs/x/ssh/ssh_config"))
    assert remote.argv("server3", "ipvsadm -Ln") == ["ssh", "-F", "/labs/x/ssh/ssh_config", "server3", "ipvsadm -Ln"]
    assert remote.argv("server3") == ["ssh", "-F", "/labs/x/ssh/ssh_config", "server3"]
    fake_ssh.answer("hostname", stdout="server3\n")
    assert remote.run("server3", "hostname").stdout == "server3\n"
    assert fake_ssh.calls() == [("server3", "hostname")]


def test_a_node_that_does_not_answer_in_time_is_unreachable_not_an_exception(fake_ssh):
    fake_ssh.answer("slow", sleep=5)
    started = time.monotonic()
    result = Remote(Path("c")).run("server3", "slow", timeout=0.5)
    assert result.returncode == UNREACHABLE and "no answer within" in result.stderr
    assert time.monotonic() - started < 4


def test_a_failed_command_names_the_node_the_command_and_why(fake_ssh):
    fake_ssh.answer("systemctl stop nginx", stdout="Unit nginx.service not loaded.\n", rc=5)
    with pytest.raises(ProviderError, match=r"server1: `systemctl stop nginx` failed: Unit nginx.service not loaded"):
        Remote(Path("c")).check("server1", "systemctl stop nginx")


def test_the_clock_offset_is_the_node_s_clock_minus_ours(fake_ssh):
    fake_ssh.answer("date +%s.%N", stdout=f"{time.time() + 100:.9f}\n", node="client")
    assert 95 < Remote(Path("c")).clock_offset("client") < 101
    fake_ssh.answer("", rc=UNREACHABLE)
    with pytest.raises(ProviderError, match="cannot read the clock of server9"):
        Remote(Path("c")).clock_offset("server9")
