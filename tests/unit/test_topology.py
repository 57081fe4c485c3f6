"""halab.prove.topology: what `invoke lab.show` draws, from a lab file and from a running lab."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from halab import paths, spec
from halab.prove import topology
from tests.fixtures import invoke_bare

DUAL = paths.LABS / "dual.yaml"


def test_the_seed_lab_file_as_text_names_roles_addresses_vrrp_vips_and_the_flow():
    text = topology.text(spec.load(), None)
    assert "(not running: the lab file's view)" in text.splitlines()[0]
    assert "VRRPv2 multicast, advert every 1 s" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  server")}
    assert "director 172.25.1.1" in lines["server3"] and "VRID 51: MASTER priority 100" in lines["server3"]
    assert "VRID 51: BACKUP priority 50" in lines["server4"]
    assert "realserver 172.25.1.101" in lines["server1"] and "172.25.1.100:80 weight 1" in lines["server1"]
    assert "  172.25.1.100:80/TCP (VRID 51) on server3: rr/DR to server1, server2" in text
    assert (
        "request: client -> VIP 172.25.1.100 on server3 -> server1 | server2 (rr, same packet, MAC rewritten)" in text
    )
    assert "reply:   server1 | server2 -> client: straight to the client" in text


def test_active_active_puts_each_vip_on_its_own_master_with_its_own_vrid():
    lab = spec.load(DUAL)
    assert topology.holders(lab, None) == {"172.25.1.100": "server3", "172.25.1.200": "server4"}
    assert topology.vrids(lab) == {"172.25.1.100": 51, "172.25.1.200": 52}
    requests = [(f.source, f.target) for f in topology.flows(lab, None) if f.kind == "request"]
    assert requests == [("client", "server3"), ("client", "server4")]


def test_the_flows_of_a_dr_service_return_straight_to_the_client():
    flows = topology.flows(spec.load(), None)
    assert {(f.source, f.target, f.kind) for f in flows} == {
        ("client", "server3", "request"),
        ("server3", "server1", "forward"),
        ("server3", "server2", "forward"),
        ("server1", "client", "reply"),
        ("server2", "client", "reply"),
    }


def test_dot_has_every_node_the_switch_and_each_flow():
    text = topology.dot(spec.load(DUAL), None)
    assert text.startswith('digraph "dual" {') and text.rstrip().endswith("}")
    for name in ("server1", "server2", "server3", "server4", "client"):
        assert f'"{name}" -> switch [dir=none' in text
    assert text.count("constraint=false") == len(topology.flows(spec.load(DUAL), None))
    assert '"server4" [label="server4\\ndirector 172.25.1.2\\nVRID 51: BACKUP priority 50' in text


@pytest.mark.parametrize(("suffix", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_the_picture_is_written_as_asked(tmp_path, suffix, magic):
    path = topology.draw(spec.load(DUAL), None, tmp_path / f"topology.{suffix}")
    assert path.read_bytes()[:5].startswith(magic)
    if suffix == "svg":
        assert ET.parse(path).getroot().tag.endswith("svg")


def test_a_running_lab_shows_who_holds_the_vip_and_its_ipvs_members(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fake_ssh.answer(
        "ipvsadm -Ln --stats",
        node="server3",
        stdout="TCP  172.25.1.100:80    45   300   0   20000   0\n"
        "  -> 172.25.1.101:80    23   150   0   10000   0\n  -> 172.25.1.102:80    22   150   0   10000   0\n",
    )
    fake_ssh.answer(
        "ipvsadm -Ln",
        node="server3",
        stdout="TCP  172.25.1.100:80 rr\n  -> 172.25.1.101:80   Route   1   2   5\n"
        "  -> 172.25.1.102:80   Route   0   0   7\n",
    )
    now = topology.live(memory_provider)
    assert now is not None
    assert now.members["172.25.1.100:80"] == (
        topology.Member("server1", 1, 2, 5, 23),
        topology.Member("server2", 0, 0, 7, 22),
    )
    text = topology.text(memory_provider.lab, now)
    assert "(running)" in text.splitlines()[0]
    assert "now: up, MASTER, holds 172.25.1.100" in text and "now: up, BACKUP" in text
    assert "now: server1 in IPVS, weight 1, 2 active / 5 inactive, 23 connections" in text
    assert ("server3", "ipvsadm -Ln --stats") in fake_ssh.calls()


def test_a_lab_that_is_not_up_is_drawn_from_its_file(memory_provider):
    assert topology.live(memory_provider) is None


def test_a_lab_with_a_crashed_node_is_running_with_that_node_down(memory_provider, fake_ssh, monkeypatch):
    memory_provider.up_now = True
    monkeypatch.setattr(memory_provider, "alive_nodes", lambda: {"server1", "server2", "server4", "client"})
    now = topology.live(memory_provider)
    assert now is not None and "(running; down: server3)" in topology.title(memory_provider.lab, now)


def test_lab_show_writes_into_the_lab_s_artifacts(tmp_path):
    result = invoke_bare("lab.show", "--format", "svg", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {tmp_path}/labs/seed/artifacts/topology.svg"
    assert (tmp_path / "labs" / "seed" / "artifacts" / "topology.svg").exists()
