"""The one reader of live lab state, and the fault primitives, without a lab: what a node's
answer means, and what each fault runs through the provider."""

from __future__ import annotations

import pytest

from halab.errors import UsageError
from halab.prove import labstate
from halab.prove.labstate import LabState
from halab.providers.faults import Fault
from tests.fixtures import MemoryProvider

DIRECTOR = f"""{labstate.MARK}addresses
2: eth0    inet 172.25.1.1/24 brd 172.25.1.255 scope global eth0\\       valid_lft forever
2: eth0    inet 172.25.1.100/32 scope global eth0\\       valid_lft forever
{labstate.MARK}keepalived
running
{labstate.MARK}macs
aa:00:00:00:00:03
{labstate.MARK}ipvs
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.25.1.100:80 rr
  -> 172.25.1.101:80              Route   1      0          0
{labstate.MARK}transitions
3
"""


def test_a_directors_answer_names_its_vips_daemon_macs_ipvs_and_transitions():
    state = labstate.parse(DIRECTOR)
    assert state.reachable and state.keepalived and state.transitions == 3
    assert state.addresses == {"172.25.1.1", "172.25.1.100"}
    assert state.macs == {"aa:00:00:00:00:03"}
    snapshot = labstate.Snapshot({"server3": state, "server4": labstate.NodeState(False)})
    assert snapshot.holders("172.25.1.100") == ["server3"]
    assert snapshot.members("server3", ("TCP", "172.25.1.100", 80)) == {"172.25.1.101"}
    assert snapshot.members("server3", ("TCP", "172.25.1.200", 80)) is None
    assert snapshot.macs() == {"aa:00:00:00:00:03": "server3"}


def test_an_unreadable_log_and_an_unresolved_neighbour_say_so():
    state = labstate.parse(f"{labstate.MARK}transitions\n{labstate.MARK}neigh\n172.25.1.100 FAILED\n")
    assert state.transitions == -1 and state.neigh == {"172.25.1.100": ""}
    resolved = labstate.parse(f"{labstate.MARK}neigh\n172.25.1.100 lladdr aa:00:00:00:00:04 REACHABLE\n")
    assert resolved.neigh == {"172.25.1.100": "aa:00:00:00:00:04"}


def test_one_round_trip_per_node_asks_only_what_the_role_has(memory_provider, fake_ssh):
    memory_provider.up_now = True
    LabState(memory_provider).read(("addresses", "ipvs", "neigh", "transitions"))
    assert sorted(node for node, _ in fake_ssh.calls()) == sorted(memory_provider.lab.nodes)  # one ssh per node
    calls = dict(fake_ssh.calls())
    assert "ipvsadm -Ln" in calls["server3"] and "log keepalived" in calls["server3"]
    assert "ipvsadm -Ln" not in calls["server1"] and "ip -4 neigh" not in calls["server1"]
    assert "ip -4 neigh show" in calls["client"]


def test_the_baseline_reads_members_by_name_on_the_vips_holder(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fake_ssh.answer(
        "ipvsadm -Ln", node="server3", stdout="TCP  172.25.1.100:80 rr\n  -> 172.25.1.102:80  Route 1 0 0\n"
    )
    assert LabState(memory_provider).members() == {"server2"}


def test_a_fault_is_data_with_its_words_and_an_unknown_one_is_refused():
    fault = Fault("service", "server3", "keepalived")
    assert (fault.applied, fault.healed) == ("stop keepalived on server3", "start keepalived on server3")
    assert Fault("link", "server3").healed == "restore server3's link"
    with pytest.raises(UsageError, match="unknown fault 'flood'; known: service, crash, link, wait, "):
        Fault("flood", "server3")


def test_each_fault_is_applied_and_healed_through_the_providers_verbs(memory_provider: MemoryProvider):
    memory_provider.up_now = True
    for fault in (Fault("crash", "server3"), Fault("link", "server4")):
        fault.apply(memory_provider)
        fault.heal(memory_provider)
    assert MemoryProvider.events == ["crash server3", "restart server3", "cut server4", "restore server4"]


def test_what_remains_of_a_fault_is_named(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fake_ssh.answer("pidof nginx", rc=1)
    assert Fault("service", "server1", "nginx").remains(memory_provider) == "nginx is not running on server1"
    assert Fault("crash", "server3").remains(memory_provider) == ""
    fake_ssh.answer("socket.create_connection", node="server3", rc=1)
    assert Fault("link", "server3").remains(memory_provider) == "server3 still cannot reach server4 (172.25.1.2)"
    assert Fault("link", "server4").remains(memory_provider) == ""
