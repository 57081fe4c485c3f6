"""halab.prove.session: boot-if-needed, logs, evidence and the destroy policy, in one place."""

from __future__ import annotations

import json

import pytest

from halab import paths, spec
from halab.errors import UsageError
from halab.prove import failover
from halab.prove.session import DESTROY, Session
from halab.providers.vagrant import VagrantProvider
from tests.conftest import MemoryProvider


@pytest.mark.parametrize(
    ("policy", "passed", "booted", "destroyed"),
    [
        ("passing", True, True, True),
        ("passing", False, True, False),
        ("passing", True, False, False),
        ("booted", False, True, True),
        ("booted", True, False, False),
        ("always", False, False, True),
        ("never", True, True, False),
    ],
)
def test_the_destroy_policies(policy, passed, booted, destroyed):
    assert DESTROY[policy](passed, booted) is destroyed


def test_an_unknown_policy_is_refused_with_the_known_ones(memory_provider):
    with pytest.raises(UsageError, match="--destroy must be one of passing, booted, always, never; got 'sometimes'"):
        Session(memory_provider, "acceptance", "sometimes")


def test_a_passing_run_it_booted_collects_logs_records_evidence_and_tears_down(memory_provider, fake_ssh):
    fake_ssh.answer("ipvsadm -Ln --stats", stdout="TCP  172.25.1.100:80 rr\n")
    with Session(memory_provider, "acceptance") as session:
        assert MemoryProvider.events == ["boot"]
        session.passed = True
    assert MemoryProvider.events == ["boot", "teardown seed"]
    assert (paths.LabPaths("seed").artifacts / "nodes" / "server3" / "ipvsadm.txt").read_text().startswith("TCP")
    (record,) = [json.loads(p.read_text()) for p in paths.evidence().glob("*.json")]
    assert (record["kind"], record["lab"], record["passed"]) == ("acceptance", "seed", True)


@pytest.mark.parametrize("interruption", [RuntimeError("probe died"), KeyboardInterrupt()])
def test_a_failure_or_ctrl_c_still_collects_logs_and_keeps_the_lab_for_debugging(
    memory_provider, fake_ssh, interruption
):
    with pytest.raises(type(interruption)), Session(memory_provider, "failover") as session:
        session.passed = True
        raise interruption
    assert MemoryProvider.events == ["boot"]  # passing: a failed run's lab stays up
    assert (paths.LabPaths("seed").artifacts / "nodes" / "client" / "ip-addr.txt").exists()
    (record,) = [json.loads(p.read_text()) for p in paths.evidence().glob("*.json")]
    assert record["passed"] is False


def test_a_lab_that_was_already_up_is_left_up(memory_provider, fake_ssh):
    memory_provider.up_now = True
    with Session(memory_provider, "acceptance", record=False) as session:
        session.passed = True
    assert MemoryProvider.events == [] and not paths.evidence().exists()


def test_the_failover_runner_reads_the_lab_as_the_provider_runs_it(home, fake_ssh):
    """Vagrant runs the lab on eth1 (eth0 is the management NIC): MACs and ARP flushes must
    go there, whatever the lab file says."""
    provider = VagrantProvider(spec.load(), progress=lambda _: None, hypervisor="libvirt")
    runner = failover.Runner(provider, progress=lambda _: None)
    fake_ssh.answer("capture", stdout=json.dumps({"pages": ["FAILED: timeout"]}) + "\n")
    runner.macs()
    runner._client_reaches_every_vip()
    network = [command for _, command in fake_ssh.calls() if "/sys/class/net/" in command or "ip neigh" in command]
    assert network and all("eth1" in command and "eth0" not in command for command in network), network
