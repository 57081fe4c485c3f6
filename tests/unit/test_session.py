"""halab.prove.session: boot-if-needed, logs, evidence and the destroy policy, in one place."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from halab import paths, spec
from halab.errors import ProviderError, UsageError
from halab.prove import runner, session
from halab.prove.results import Margin
from halab.prove.runner import Runner
from halab.prove.scenarios import Phase, Scenario
from halab.prove.session import DESTROY, Session
from halab.providers import faults
from halab.providers.vagrant.provider import VagrantProvider
from tests.fixtures import MemoryProvider


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
    assert (paths.LabPaths("seed").latest / "nodes" / "server3" / "ipvsadm.txt").read_text().startswith("TCP")
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
    assert (paths.LabPaths("seed").latest / "nodes" / "client" / "ip-addr.txt").exists()
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
    measuring = Runner(provider, progress=lambda _: None)
    fake_ssh.answer("capture", stdout=json.dumps({"pages": ["FAILED: timeout"]}) + "\n")
    measuring.state.read(("macs",))
    measuring._client_reaches_every_vip()
    network = [command for _, command in fake_ssh.calls() if "/sys/class/net/" in command or "ip neigh" in command]
    assert network and all("eth1" in command and "eth0" not in command for command in network), network


WAIT = faults.Fault("wait")


def _phase(name: str, fault: faults.Fault, heals: bool = False) -> Phase:
    """A phase with a one-second bound that leaves the VIP on server3."""
    return Phase(name, fault, heals, 1.0, "a second", {"172.25.1.100": "server3"})


def _quick(monkeypatch) -> None:
    """No baseline or tail around the phases: the fake probe's records are all there is."""
    for name in ("BASELINE", "TAIL"):
        monkeypatch.setattr(runner, name, 0.0)


def _probe_answers(fake_ssh) -> None:
    """The client's answers for a Runner: its clock, a probe whose every request succeeded,
    every VIP reachable; server3's IPVS table has both real servers."""
    records = [{"event": "start"}] + [
        {
            "seq": n,
            "sent": 1000 + n * 0.05,
            "done": 1000.01 + n * 0.05,
            "ok": True,
            "target": "172.25.1.100:80",
            "mac": "aa:03",
            "page": "<h1>server1's page</h1>",
        }
        for n in range(60)
    ]
    fake_ssh.answer(" http --rate", stdout="".join(json.dumps(r) + "\n" for r in records))
    fake_ssh.answer("date +%s.%N", stdout="1000.0\n")
    fake_ssh.answer(" capture --target", stdout=json.dumps({"pages": ["<h1>server1's page</h1>"] * 3}) + "\n")
    fake_ssh.answer(
        "ipvsadm -Ln",
        node="server3",
        stdout="TCP  172.25.1.100:80 rr\n  -> 172.25.1.101:80  Route  1  0  0\n  -> 172.25.1.102:80  Route  1  0  0\n",
    )


def measured_with_a_failed_restart(provider: MemoryProvider, monkeypatch: pytest.MonkeyPatch) -> list:
    """session.measure over three scenarios: one passing, one whose node never comes back
    after its crash (the run ends there, ERROR), one never reached."""

    def no_boot(node: str) -> None:
        raise ProviderError("server3 did not answer over ssh within 60 s of its restart")

    monkeypatch.setattr(provider, "restart", no_boot)
    crash = faults.Fault("crash", "server3")
    chosen = [
        Scenario("quiet", "nothing happens", (_phase("wait", WAIT),)),
        Scenario(
            "restart-fails",
            "server3 crashes and does not come back",
            (_phase("crash server3", crash), _phase("restart server3", crash, heals=True)),
        ),
        Scenario("never", "not reached", (_phase("wait", WAIT),)),
    ]
    return session.measure(provider, chosen, progress=lambda _: None, margin=Margin(0, 0))


def test_a_scenario_that_raises_still_gets_the_table_and_the_reports(memory_provider, fake_ssh, monkeypatch, capsys):
    """A node that does not come back ends the run, but the scenarios that ran, the one that
    raised (with its error) and the ones never run are printed and written, JSON and JUnit."""
    _quick(monkeypatch)
    _probe_answers(fake_ssh)
    runs = measured_with_a_failed_restart(memory_provider, monkeypatch)

    assert [(run.scenario, run.passed, run.failed_step) for run in runs] == [
        ("quiet", True, ""),
        ("restart-fails", False, "restart server3"),
    ]
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.startswith(("quiet", "restart-fails"))]
    assert [row[:2] + row[-1:] for row in rows] == [
        ["quiet", "wait", "within"],
        ["restart-fails", "crash", "within"],
        ["restart-fails", "restart", "ERROR"],
    ], printed
    assert "restart-fails / restart server3: error: server3 did not answer over ssh within 60 s" in printed
    assert "not run (the run stopped before them): never" in printed
    out = paths.LabPaths("seed").latest
    data = json.loads((out / "failover.json").read_text())
    assert data["passed"] is False and data["not_run"] == ["never"]
    assert [s["scenario"] for s in data["scenarios"]] == ["quiet", "restart-fails"]
    assert (
        data["scenarios"][1]["error"].startswith("server3 did not answer") and len(data["scenarios"][1]["phases"]) == 1
    )
    suite = ET.parse(out / "failover.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors"), suite.get("skipped")) == (
        "4",
        "1",
        "1",
    )  # two phases, one error, one not run
    (error,) = suite.iter("error")
    assert error.get("message").startswith("server3 did not answer")
    assert MemoryProvider.events == ["boot", "crash server3"]  # a failed run's lab is kept for debugging


def test_ctrl_c_mid_run_still_prints_and_writes_what_ran(memory_provider, fake_ssh, monkeypatch, capsys):
    _quick(monkeypatch)
    _probe_answers(fake_ssh)

    def interrupt(node):
        raise KeyboardInterrupt

    monkeypatch.setattr(memory_provider, "crash", interrupt)
    chosen = [
        Scenario("quiet", "nothing happens", (_phase("wait", WAIT),)),
        Scenario("stopped", "Ctrl-C", (_phase("wait", faults.Fault("crash", "server3")),)),
        Scenario("later", "never reached", (_phase("wait", WAIT),)),
    ]
    with pytest.raises(KeyboardInterrupt):
        session.measure(memory_provider, chosen, progress=lambda _: None, margin=Margin(0, 0))
    out = capsys.readouterr().out
    assert ["quiet", "wait"] in [line.split()[:2] for line in out.splitlines()]
    assert "interrupted during stopped: its phases were not recorded" in out and "not run (the run" in out
    data = json.loads((paths.LabPaths("seed").latest / "failover.json").read_text())
    assert [s["scenario"] for s in data["scenarios"]] == ["quiet"] and data["not_run"] == ["later"]
    assert data["interrupted"] == "stopped" and data["passed"] is False
    # Interrupted in its first scenario, a run still replaces the reports of the run before it.
    with pytest.raises(KeyboardInterrupt):
        session.measure(memory_provider, chosen[1:], progress=lambda _: None)
    data = json.loads((paths.LabPaths("seed").latest / "failover.json").read_text())
    assert data["scenarios"] == [] and data["interrupted"] == "stopped" and data["passed"] is False
    assert 'name="interrupted"' in (paths.LabPaths("seed").latest / "failover.xml").read_text()


def test_two_runs_leave_two_folders_and_each_evidence_points_at_its_own(memory_provider, fake_ssh, monkeypatch):
    """A one-scenario run left the last run's PNGs beside its own JSON, and both runs'
    evidence pointed at the same, overwritten folder. Now each run has its own folder."""
    _quick(monkeypatch)
    _probe_answers(fake_ssh)
    quiet = [Scenario("quiet", "nothing happens", (_phase("wait", WAIT),))]
    first = [Scenario("first", "nothing either", (_phase("wait", WAIT),)), *quiet]
    session.measure(memory_provider, first, destroy="never", progress=lambda _: None)
    session.measure(memory_provider, quiet, destroy="never", progress=lambda _: None)
    lab = paths.LabPaths("seed")
    runs = sorted(p for p in lab.artifacts.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(runs) == 2 and lab.latest.resolve() == runs[1]
    assert (runs[0] / "failover-first.png").exists() and not (runs[1] / "failover-first.png").exists()
    assert [json.loads((run / "failover.json").read_text())["scenarios"][0]["scenario"] for run in runs] == [
        "first",
        "quiet",
    ]
    records = [json.loads(path.read_text()) for path in sorted(paths.evidence().glob("*-failover-seed*.json"))]
    assert [record["report"] for record in records] == [str(run) for run in runs]


def test_format_json_prints_failover_json_whole_and_the_page_on_stderr(memory_provider, fake_ssh, monkeypatch, capsys):
    _quick(monkeypatch)
    _probe_answers(fake_ssh)
    chosen = [Scenario("quiet", "nothing happens", (_phase("wait", WAIT),))]
    session.measure(memory_provider, chosen, progress=lambda _: None, form="json")
    printed = capsys.readouterr()
    data = json.loads(printed.out)  # stdout is the document alone
    assert data == json.loads((paths.LabPaths("seed").latest / "failover.json").read_text())
    assert data["scenarios"][0]["phases"][0]["verdict"] == "within"
    assert printed.err.strip() == f"report: {paths.LabPaths('seed').latest.resolve() / paths.REPORT}"


def test_a_page_that_cannot_be_written_still_tears_the_lab_down(memory_provider, fake_ssh, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(session.page, "write", broken)
    said: list[str] = []
    with Session(memory_provider, "acceptance", progress=said.append) as run:
        run.passed = True
    assert MemoryProvider.events == ["boot", "teardown seed"] and run.report is None
    assert "could not write the run's page: no display" in said
