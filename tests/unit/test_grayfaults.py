"""The gray-failure primitives without a lab: what each runs on which node, what its heal
checks, and the shell pieces that can run here for real (a stopped process seen as stopped,
the answerer's status and delay)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from halab.errors import ProviderError, UsageError
from halab.providers import grayfaults
from halab.providers.faults import PRIMITIVES, Fault


@pytest.fixture
def up(memory_provider):
    memory_provider.up_now = True
    return memory_provider


def _sent(fake_ssh, node: str) -> list[str]:
    return [command for where, command in fake_ssh.calls() if where == node]


def test_the_gray_primitives_are_registered_with_their_words():
    assert {"pause", "reload", "vip-deleted", "realserver-error", "realserver-slow"} <= set(PRIMITIVES)
    pause = Fault("pause", "server3", "keepalived")
    assert (pause.applied, pause.healed) == ("pause keepalived on server3", "resume keepalived on server3")
    assert Fault("vip-deleted", "server3").applied == "delete the VIP from server3"
    assert Fault("realserver-error", "server1").healed == "remove the 500 from server1"


def test_a_pause_stops_and_resumes_every_process_of_the_service(up, fake_ssh):
    fault = Fault("pause", "server1", "nginx")
    fault.apply(up)
    fault.heal(up)
    sent = _sent(fake_ssh, "server1")
    assert "pids=$(pidof nginx) && kill -STOP $pids" in sent
    assert "pids=$(pidof nginx) && kill -CONT $pids" in sent
    assert sent.index("pids=$(pidof nginx) && kill -STOP $pids") < sent.index("pids=$(pidof nginx) && kill -CONT $pids")


def test_only_keepalived_and_nginx_can_be_paused(up):
    with pytest.raises(UsageError, match="service 'smtpd' cannot be paused; allowed: keepalived, nginx"):
        Fault("pause", "client", "smtpd").apply(up)


def test_a_process_left_stopped_is_what_remains_of_a_pause(up, fake_ssh):
    fake_ssh.reset()
    fake_ssh.answer("/proc/$p/status", node="server3", stdout="812\n813\n")
    fault = Fault("pause", "server3", "keepalived")
    assert fault.remains(up) == "keepalived on server3 still stopped (pids 812 813)"
    assert Fault("pause", "server4", "keepalived").remains(up) == ""


def test_the_stopped_test_sees_a_real_stopped_process():
    """STOPPED, run here for real on a process of ours: listed while stopped, not once resumed."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        sleeper.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        assert str(sleeper.pid) in _shell(grayfaults.STOPPED.format(name="sleep")).split()
        sleeper.send_signal(signal.SIGCONT)
        time.sleep(0.2)
        assert str(sleeper.pid) not in _shell(grayfaults.STOPPED.format(name="sleep")).split()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_reload_signals_keepalived_s_parent_only(up, fake_ssh):
    Fault("reload", "server3").apply(up)
    (command,) = [c for c in _sent(fake_ssh, "server3") if "kill -HUP" in c]
    assert grayfaults.PARENT in command
    assert Fault("reload", "server3").remains(up) == ""


def test_a_weight_change_is_a_copy_mounted_over_keepalived_s_file_and_unmounted_on_heal(up, fake_ssh):
    fault = Fault("reweight", "server3")
    fault.apply(up)
    fault.heal(up)
    applied, healed = [c for c in _sent(fake_ssh, "server3") if "kill -HUP" in c]
    assert f'mount --bind {grayfaults.REWEIGHTED} "$conf"' in applied and "umask 077" in applied
    assert 'umount "$conf"' in healed
    fake_ssh.reset()
    fake_ssh.answer("/proc/self/mountinfo", node="server3", stdout="mounted\n")
    assert fault.remains(up) == "the reweighted keepalived.conf on server3: mounted"


def test_the_vip_is_deleted_where_it_is_held_and_its_absence_is_named(up, fake_ssh):
    Fault("vip-deleted", "server3").apply(up)
    assert "ip addr del 172.25.1.100/32 dev eth0" in _sent(fake_ssh, "server3")
    with pytest.raises(ProviderError, match=r"server4 holds none of the VIPs 172\.25\.1\.100"):
        Fault("vip-deleted", "server4").apply(up)
    assert Fault("vip-deleted", "server3").remains(up) == ""  # server3 holds it, server4 not


def test_a_vip_held_by_nobody_or_by_both_directors_remains(up, fake_ssh):
    fake_ssh.reset()
    fake_ssh.answer("ip -4 -o addr show", stdout="2: eth0    inet 172.25.1.1/24 scope global eth0\n")
    assert Fault("vip-deleted", "server3").remains(up) == "172.25.1.100 held by no director"
    fake_ssh.reset()
    fake_ssh.answer("ip -4 -o addr show", stdout="2: eth0    inet 172.25.1.100/32 scope global eth0\n")
    assert Fault("vip-deleted", "server3").remains(up) == "172.25.1.100 held by server3 and server4"


def test_a_real_server_fault_writes_a_drop_in_and_its_heal_removes_it(up, fake_ssh):
    fault = Fault("realserver-error", "server1")
    fault.apply(up)
    (applied,) = [c for c in _sent(fake_ssh, "server1") if "answerer.pid" in c]
    assert f"{grayfaults.NGINX_DROPINS}/error.conf" in applied and "nginx -s reload" in applied
    assert "send_response(500)" in applied
    fault.heal(up)
    assert any(c.startswith(f"rm -f {grayfaults.NGINX_DROPINS}/*.conf") for c in _sent(fake_ssh, "server1"))
    with pytest.raises(UsageError, match="server3 is not a real server"):
        Fault("realserver-slow", "server3").apply(up)


def test_what_remains_of_a_drop_in_is_named(up, fake_ssh):
    fake_ssh.answer("answerer.pid", node="server1", stdout="slow.conf\nanswerer.pid\n")
    assert Fault("realserver-slow", "server1").remains(up) == "on server1: slow.conf answerer.pid"
    assert Fault("realserver-slow", "server2").remains(up) == ""


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (200, 1.5)])
def test_the_answerer_answers_with_its_status_after_its_delay(status, delay):
    """The program the drop-in proxies to, run here on loopback: its status, its delay."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    program = grayfaults.ANSWERER.format(status=status, delay=delay, port=port)
    program = program.replace("/usr/local/nginx/html/index.html", __file__)
    server = subprocess.Popen([sys.executable, "-c", program])
    try:
        _wait_for(port)
        started = time.monotonic()
        try:
            code = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).status
        except urllib.error.HTTPError as error:
            code = error.code
        assert code == status
        assert time.monotonic() - started >= delay
    finally:
        server.kill()
        server.wait()


def _wait_for(port: int) -> None:
    for _ in range(100):
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the answerer never listened on {port}")


def _shell(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10, check=True).stdout
