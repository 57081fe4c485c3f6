"""The lifecycle every provider shares (halab.providers.base), on an in-memory provider."""

from __future__ import annotations

import pytest

from halab import paths, spec
from halab.errors import ProviderError, UsageError
from tests.fixtures import MemoryProvider


def test_a_missing_requirement_stops_up_before_anything_starts(memory_provider):
    memory_provider.missing = "apt-get install thing"
    with pytest.raises(ProviderError, match="preflight failed:\n  - a thing: fix: apt-get install thing"):
        memory_provider.up()
    assert MemoryProvider.events == []


def test_up_boots_and_waits_for_every_vip_on_one_director(memory_provider, fake_ssh):
    memory_provider.up()
    assert MemoryProvider.events == ["boot"]
    assert [row.vrrp for row in memory_provider.status()] == ["-", "-", "MASTER", "BACKUP", "-"]
    said: list[str] = []
    memory_provider.progress = said.append
    memory_provider.up()
    assert said == ["lab 'seed' is already up"] and MemoryProvider.events == ["boot"]


@pytest.mark.parametrize("failure", [ProviderError("node server1 did not boot"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_boot_is_torn_down_unless_kept(memory_provider, failure):
    memory_provider.fail_boot = failure
    said: list[str] = []
    memory_provider.progress = said.append
    with pytest.raises(type(failure)):
        memory_provider.up()
    assert MemoryProvider.events == ["boot", "teardown seed"]
    why = "interrupted" if isinstance(failure, KeyboardInterrupt) else "failed"
    assert said == [f"{why}: tearing down what lab 'seed' had started", "lab 'seed' torn down"]
    MemoryProvider.events.clear()
    memory_provider.up_now = False
    with pytest.raises(type(failure)):
        memory_provider.up(keep=True)
    assert MemoryProvider.events == ["boot"]


def test_vrrp_that_never_converges_fails_up_and_tears_down(memory_provider, fake_ssh):
    fake_ssh.reset()  # both directors claim the VIP
    fake_ssh.answer("ip -4 -o addr show", stdout="2: eth0    inet 172.25.1.100/32 scope global eth0\n")
    fake_ssh.answer("pidof keepalived", stdout="running\n")
    with pytest.raises(ProviderError, match=r"VRRP did not place every VIP on exactly one director within 0\.5 s"):
        memory_provider.up()
    assert MemoryProvider.events == ["boot", "teardown seed"]


def test_fault_verbs_name_the_known_nodes_and_services(memory_provider):
    memory_provider.up_now = True
    with pytest.raises(UsageError, match="lab 'seed' has no node 'nosuchnode'; nodes: server1, server2, server3"):
        memory_provider.crash("nosuchnode")
    with pytest.raises(UsageError, match="unknown service 'sshd'; known: keepalived, nginx, smtpd"):
        memory_provider.stop_service("server3", "sshd")
    with pytest.raises(UsageError, match="server1 is a realserver: it runs nginx, not keepalived"):
        memory_provider.stop_service("server1", "keepalived")
    memory_provider.crash("server3")
    memory_provider.cut_link("server4")
    assert MemoryProvider.events == ["crash server3", "cut server4"]


@pytest.mark.parametrize(
    "verb",
    [
        lambda p: p.cut_link("server3"),
        lambda p: p.restore_link("server3"),
        lambda p: p.stop_service("server3", "keepalived"),
        lambda p: p.start_service("server3", "keepalived"),
        lambda p: p.crash("server3"),
    ],
)
def test_a_fault_verb_on_a_crashed_node_answers_at_once_with_what_to_do(memory_provider, fake_ssh, verb):
    """An operator's `fault.cut` on a crashed node gave a traceback, `fault.stop` hung 30 s."""
    memory_provider.up_now = True
    memory_provider.crash("server3")
    with pytest.raises(ProviderError, match=r"server3 is down \(crashed or powered off\): `invoke fault.restart"):
        verb(memory_provider)
    assert MemoryProvider.events == ["crash server3"] and fake_ssh.calls() == [("server3", "-O exit")]
    memory_provider.restart("server3")
    memory_provider.cut_link("server3")
    assert MemoryProvider.events[-2:] == ["restart server3", "cut server3"]


def test_a_fault_that_leaves_a_dead_or_stalled_connection_closes_the_nodes_ssh_master(memory_provider, fake_ssh):
    """A crash sends no FIN and a cut link backs TCP's retransmissions off: a master connection
    kept from before would carry the next command into it (CI saw reads stall 15 s, and a
    restart's first ssh fail). Each such verb closes it; the next command opens a fresh one."""
    memory_provider.up_now = True
    for verb in (
        memory_provider.crash,
        memory_provider.restart,
        memory_provider.cut_link,
        memory_provider.restore_link,
    ):
        fake_ssh.log.unlink(missing_ok=True)
        verb("server3")
        assert ("server3", "-O exit") in fake_ssh.calls(), verb.__name__


@pytest.mark.parametrize(
    "verb",
    [lambda p: p.crash("client"), lambda p: p.restart("server1"), lambda p: p.stop_service("server3", "keepalived")],
)
def test_a_fault_verb_on_a_lab_that_is_not_up_says_so_and_does_nothing(memory_provider, fake_ssh, verb):
    with pytest.raises(ProviderError, match=r"lab 'seed' is not up on this host: `invoke lab.up` first"):
        verb(memory_provider)
    assert MemoryProvider.events == [] and fake_ssh.calls() == []


def test_service_verbs_run_the_provider_s_command_on_the_node(memory_provider, fake_ssh):
    memory_provider.up_now = True
    memory_provider.stop_service("server1", "nginx")
    assert ("server1", "svc stop nginx") in fake_ssh.calls()
    fake_ssh.answer("svc start", stdout="no such unit\n", rc=1)
    with pytest.raises(ProviderError, match="server1: `svc start nginx` failed: no such unit"):
        memory_provider.start_service("server1", "nginx")


def test_a_node_that_does_not_answer_shows_as_unreachable(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fake_ssh.answer("ip -4 -o addr show", node="server1", rc=255)
    rows = {row.name: row for row in memory_provider.status()}
    assert rows["server1"].vrrp == "unreachable" and rows["server3"].vips == ("172.25.1.100",)


def test_with_preempt_up_waits_for_the_vip_on_its_master_not_the_first_director_up(memory_provider, fake_ssh):
    fake_ssh.reset()  # the BACKUP holds the VIP: where it sits until the MASTER's keepalived starts
    fake_ssh.answer("ip -4 -o addr show", node="server4", stdout="inet 172.25.1.100/32 scope global eth0\n")
    fake_ssh.answer("pidof keepalived", stdout="running\n")
    with pytest.raises(ProviderError, match="VRRP did not place every VIP"):
        memory_provider.up()
    nopreempt = memory_provider.lab.model_copy(
        update={"vrrp": memory_provider.lab.vrrp.model_copy(update={"preempt": False})}
    )
    MemoryProvider(nopreempt, progress=lambda _: None).up()  # either director will do


def test_a_running_lab_whose_file_changed_is_refused_not_judged_with_the_new_numbers(memory_provider):
    """An operator raised the BACKUP's priority as a finding suggested; `lab.up` said
    "already up" and kept the old one, and the failover run judged the old lab with the new
    bound. Now the difference is named, and --recreate boots the file as it is."""
    memory_provider.up()
    edited = memory_provider.lab.model_copy(
        update={
            "nodes": {
                **memory_provider.lab.nodes,
                "server4": memory_provider.lab.nodes["server4"].model_copy(update={"priority": 99}),
            }
        }
    )
    again = MemoryProvider(edited, progress=lambda _: None, up=True)
    with pytest.raises(
        ProviderError, match=r"(?s)its file changed since it booted:\n  nodes.server4.priority: 50 -> 99\n.*--recreate"
    ):
        again.up()
    assert MemoryProvider.events == ["boot"]
    again.up(recreate=True)
    assert MemoryProvider.events == ["boot", "teardown seed", "boot"]
    again.up()  # the same file as booted: nothing to say
    assert MemoryProvider.events[-1] == "boot" and not again.drift()


def test_commands_without_a_lab_act_on_the_one_lab_this_checkout_has_up(home, monkeypatch):
    """Day-2 use: once `lab.up --lab labs/persistent.yaml` ran, `lab.status`, `fault.*` and
    `test.*` need no --lab; with two labs up they ask which; with none, the seed lab."""
    from halab import providers, tasks

    assert tasks.load(None).name == "seed"
    persistent = MemoryProvider(spec.load(paths.LABS / "persistent.yaml"), progress=lambda _: None)
    persistent.record_as_run()
    up = {"persistent"}
    monkeypatch.setattr(providers, "footprint", lambda name: "1 guest(s)" if name in up else "")
    assert tasks.load(None) == persistent.lab
    assert tasks.load(str(paths.LABS / "seed.yaml")).name == "seed"  # --lab always wins
    MemoryProvider(spec.load(paths.LABS / "seed.yaml"), progress=lambda _: None).record_as_run()
    up.add("seed")
    with pytest.raises(UsageError, match="labs persistent, seed are up in this checkout: say which with --lab FILE"):
        tasks.load(None)


def test_a_restart_outlasts_the_stale_ssh_master_of_the_nodes_previous_life(memory_provider, monkeypatch):
    """A crash sends no FIN: the master connection to the node's previous life lingers and
    fails its first use once the node is back (ssh exits 255). The restart retries, it does
    not fail on it (the acceptance tier's director-crash did, once)."""
    import subprocess

    memory_provider.up_now = True
    codes, calls = iter([255, 0]), []

    def run(node: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        calls.append((node, command))
        return subprocess.CompletedProcess([], next(codes), "", "mux_client_request_session: read from master failed")

    monkeypatch.setattr(memory_provider.remote, "run", run)
    monkeypatch.setattr("halab.providers.base.time.sleep", lambda seconds: None)
    memory_provider.restart("server3")
    assert calls == [("server3", "true"), ("server3", "true")]
