"""Network fault primitives (halab.providers.netfaults): what each applies where, that each
heal removes what its apply added, and that `remains` reads the node or switch, not the heal."""

from __future__ import annotations

import threading
import time

import pytest

from halab.errors import UsageError
from halab.providers import netfaults
from halab.providers.faults import PRIMITIVES, Fault
from tests.fixtures import MemoryProvider


def _sent(fake_ssh, node: str) -> list[str]:
    return [command for name, command in fake_ssh.calls() if name == node]


def test_every_network_fault_is_a_primitive_with_apply_heal_and_remains():
    for name in netfaults.NETWORK:
        kind = PRIMITIVES[name]
        assert callable(kind.apply) and callable(kind.heal) and callable(kind.remains)
        assert Fault(name, "server3", amount=2, seconds=1).applied


def test_vrrp_blocked_drops_protocol_112_in_the_backups_own_table_and_its_heal_removes_it(memory_provider, fake_ssh):
    fault = Fault("vrrp-blocked", "server4")
    fault.apply(memory_provider)
    [apply] = _sent(fake_ssh, "server4")
    assert "nft add rule inet halab input ip protocol 112 drop" in apply  # nft when the node has it
    assert "$FW -A HALAB -p 112 -j DROP" in apply  # else iptables, in a chain of its own
    assert _sent(fake_ssh, "server3") == []
    fault.heal(memory_provider)
    assert "nft delete table inet halab" in _sent(fake_ssh, "server4")[-1]
    assert "$FW -X HALAB" in _sent(fake_ssh, "server4")[-1]


def test_remains_lists_what_the_node_still_holds(memory_provider, fake_ssh):
    fault = Fault("vrrp-blocked", "server4")
    assert fault.remains(memory_provider) == ""
    fake_ssh.answer("nft list table inet halab", node="server4", stdout="-N HALAB\n-A HALAB -p vrrp -j DROP\n")
    assert fault.remains(memory_provider) == "firewall rules left on server4: -N HALAB -A HALAB -p vrrp -j DROP"


def test_a_partition_makes_each_director_drop_the_others_address(memory_provider, fake_ssh):
    fault = Fault("director-partition", "server3")
    fault.apply(memory_provider)
    assert "ip saddr 172.25.1.2 drop" in _sent(fake_ssh, "server3")[0]
    assert "-s 172.25.1.1 -j DROP" in _sent(fake_ssh, "server4")[0]
    assert not [node for node, _ in fake_ssh.calls() if node not in ("server3", "server4")]
    fault.heal(memory_provider)
    assert all("nft delete table inet halab" in _sent(fake_ssh, node)[-1] for node in ("server3", "server4"))
    fake_ssh.answer("nft list table", node="server4", stdout="table inet halab {}\n")
    assert fault.remains(memory_provider).startswith("firewall rules left on server4")


def test_advert_loss_shapes_only_vrrp_on_the_lab_interface(memory_provider, fake_ssh):
    fault = Fault("advert-loss", "server3", amount=30, seconds=0.01)
    assert fault.applied == "lose 30 % of server3's VRRP adverts (netem) for 0.01 s"
    fault.apply(memory_provider)
    [apply] = _sent(fake_ssh, "server3")
    assert "tc qdisc add dev eth0 parent 1:4 handle 40: netem loss 30%" in apply
    assert "u32 match ip protocol 112 0xff flowid 1:4" in apply
    fault.heal(memory_provider)
    assert _sent(fake_ssh, "server3")[-1].startswith("tc qdisc del dev eth0 root")
    fake_ssh.answer("tc qdisc show dev eth0", node="server3", stdout="qdisc netem 40: parent 1:4 limit 1000 loss 30%\n")
    assert "qdisc or filter left on server3: qdisc netem 40:" in fault.remains(memory_provider)


def test_a_flap_cuts_and_restores_the_link_amount_times(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fault = Fault("link-flap", "server3", seconds=0.01, amount=3)
    fault.apply(memory_provider)
    assert MemoryProvider.events == ["cut server3", "restore server3"] * 3
    fault.heal(memory_provider)
    assert MemoryProvider.events == ["cut server3", "restore server3"] * 3


@pytest.mark.parametrize("name", ["multicast-dropped", "one-way", "garp-lost"])
def test_a_provider_without_a_switch_refuses_switch_faults_in_one_line(memory_provider, name):
    with pytest.raises(UsageError, match=r"not a switch halab runs: switch faults .* run on the local provider") as err:
        Fault(name, "server3").apply(memory_provider)
    assert "\n" not in str(err.value)
    assert Fault(name, "server3").remains(memory_provider) in ("", "keepalived is not running on server3")


class Switched(MemoryProvider):
    """A memory provider with a switch: its rules a list, its ports and MACs named after nodes."""

    rules: list[list[str]] = []  # noqa: RUF012 (reset per test)

    def filter_switch(self, rule: list[str], add: bool = True, missing_ok: bool = False) -> None:
        if add:
            self.rules.append(rule)
        elif rule in self.rules or not missing_ok:
            self.rules.remove(rule)

    def switch_filters(self) -> list[str]:
        return [" ".join(rule) for rule in self.rules]

    def switch_port(self, node: str) -> str:
        return f"port-{node}"

    def switch_mac(self, node: str) -> str:
        return f"mac-{node}"


@pytest.fixture
def switched(memory_provider):
    Switched.rules = []
    return Switched(memory_provider.lab, progress=lambda _: None)


def test_one_way_drops_the_masters_vrrp_towards_its_peer_only(switched):
    fault = Fault("one-way", "server3")
    fault.apply(switched)
    dropped = ["-p", "IPv4", "--ip-proto", "112", "-s", "mac-server3", "-o", "port-server4", "-j", "DROP"]
    assert switched.rules == [dropped]
    assert fault.remains(switched).startswith("1 filter(s) left on the lab switch: -p IPv4")
    fault.heal(switched)
    assert switched.rules == [] and fault.remains(switched) == ""


def test_multicast_dropped_is_vrrps_group_on_every_port(switched):
    Fault("multicast-dropped", "server3").apply(switched)
    assert switched.rules == [["-p", "IPv4", "--ip-dst", "224.0.0.18", "-j", "DROP"]]


def test_garp_lost_hides_the_takeovers_gratuitous_arps_from_the_client_only(switched, fake_ssh, monkeypatch):
    switched.up_now = True
    fault = Fault("garp-lost", "server3", seconds=6.0)
    during: list[list[list[str]]] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        """The fault's own wait is recorded, not slept; any other sleep (a stop's polling, another
        thread: netfaults.time is the time module itself, patched for the whole process) sleeps."""
        if seconds == fault.seconds and threading.current_thread() is threading.main_thread():
            during.append([*switched.rules])
        else:
            real_sleep(seconds)

    monkeypatch.setattr(netfaults.time, "sleep", sleep)
    fault.apply(switched)
    assert during == [
        [["-p", "ARP", "--arp-ip-src", "172.25.1.100", "--arp-gratuitous", "-o", "port-client", "-j", "DROP"]]
    ]
    assert switched.rules == []  # later ones (garp_master_refresh) reach the client
    assert _sent(fake_ssh, "server3")[-1] == "svc stop keepalived"
    [router] = _sent(fake_ssh, "client")  # the client caches ARP as a router does, its own saved
    assert router.startswith(f"{{ [ -e {netfaults.ARP_SAVED} ] || {{ sysctl -n net/ipv4/conf/eth0/arp_accept ")
    assert router.endswith(
        "sysctl -qw net/ipv4/conf/eth0/arp_accept=0 net/ipv4/neigh/eth0/base_reachable_time_ms=60000"
    )
    fault.heal(switched)
    assert switched.rules == [] and _sent(fake_ssh, "server3")[-1] == "svc start keepalived"
    assert f"set -- $(cat {netfaults.ARP_SAVED})" in _sent(fake_ssh, "client")[-1]
    fake_ssh.answer(netfaults.ARP_SAVED, node="client", stdout="saved settings not restored: 0 30000\n")
    assert "router-like ARP left on client: saved settings not restored: 0 30000" in fault.remains(switched)
