"""What the write-up promises, checked on a running lab through its ssh_config.

Every check asks the nodes themselves (testinfra, or the agent on the client), so the
same checks run on any provider: VIP placement, the IPVS table, the real servers'
DR setup, routing evidence, ARP ownership, multicast on the switch, and mail.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter

import pytest

from halab import paths
from halab.prove import ipvs, probe

pytestmark = pytest.mark.root


def _addresses(case, node: str, device: str) -> set[str]:
    out = case.host(node).check_output(f"ip -4 -o addr show dev {device}")
    return set(re.findall(r"inet (\S+)", out))


def _pages(case, target: str, count: int) -> list[str]:
    record = probe.run(
        case.provider.remote,
        case.client,
        ["capture", "--target", target, "--count", str(count), "--iface", case.lab.vrrp.interface],
    )
    return record[0]["pages"]


def test_each_vip_sits_on_its_master_alone(lab_case):
    held = {name: _addresses(lab_case, name, lab_case.lab.vrrp.interface) for name in lab_case.lab.role("director")}
    for vip, master in lab_case.masters.items():
        holders = [name for name, addresses in held.items() if f"{vip}/32" in addresses]
        assert holders == [master], f"{vip} is on {holders or 'no director'}, expected {master} alone"
    if lab_case.lab.mode == "active-backup":
        backups = [name for name in held if name not in lab_case.masters.values()]
        assert backups and all(not any(a.endswith("/32") for a in held[b]) for b in backups)


def test_the_masters_ipvs_table_matches_the_lab_file(lab_case):
    for service in lab_case.lab.virtual_services:
        master = lab_case.masters[str(service.vip)]
        table = ipvs.parse(lab_case.host(master).check_output("ipvsadm -Ln"))
        found = table.get((service.protocol, str(service.vip), service.port))
        assert found, f"no IPVS service {service.protocol} {service.vip}:{service.port} on {master}: {table}"
        assert found.scheduler == service.lb_algo
        expected = {
            (str(lab_case.lab.nodes[name].address), service.port, "Route", settings.weight)
            for name, settings in service.real_servers.items()
        }
        assert {(d.address, d.port, d.method, d.weight) for d in found.destinations} == expected


@pytest.fixture
def real_servers(lab_case) -> list[str]:
    return list(lab_case.lab.role("realserver"))


def test_real_servers_hold_every_vip_as_a_host_route_on_lo(lab_case, real_servers):
    for name in real_servers:
        on_lo = _addresses(lab_case, name, "lo")
        assert {f"{vip}/32" for vip in lab_case.lab.vips} <= on_lo, f"{name}: lo has {sorted(on_lo)}"


def test_real_servers_never_answer_arp_for_a_vip(lab_case, real_servers):
    for name in real_servers:
        host = lab_case.host(name)
        if lab_case.lab.arp_suppression == "arptables":
            rules = [set(line.split()) for line in host.check_output("arptables -L -n").splitlines()]
            own = str(lab_case.lab.nodes[name].address)
            for vip in map(str, lab_case.lab.vips):
                assert any({"-d", vip, "-j", "DROP"} <= rule for rule in rules), (
                    f"{name}: no DROP rule for {vip}: {rules}"
                )
                assert any({"-s", vip, "mangle", "--mangle-ip-s", own} <= rule for rule in rules), rules
        else:
            assert host.sysctl("net.ipv4.conf.all.arp_ignore") == 1
            assert host.sysctl("net.ipv4.conf.all.arp_announce") == 2


def test_nginx_listens_serves_its_own_page_and_its_config_is_clean(lab_case, real_servers):
    ports = {service.port for service in lab_case.lab.virtual_services}
    for name in real_servers:
        host = lab_case.host(name)
        for port in ports:
            assert host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"{name}: nothing listens on :{port}"
        page = host.check_output(f"curl -s -m 5 http://127.0.0.1:{min(ports)}/")
        assert f"{name}'s page" in page
        test = host.run("/usr/local/nginx/sbin/nginx -t")
        assert test.rc == 0 and "test is successful" in test.stderr, test.stderr


def test_keepalived_config_is_clean_on_every_director(lab_case):
    for name in lab_case.lab.role("director"):
        host = lab_case.host(name)
        command = host.check_output("cat /proc/$(pidof -s keepalived)/cmdline | tr '\\0' ' '").split()
        config = command[command.index("-f") + 1] if "-f" in command else "/etc/keepalived/keepalived.conf"
        result = host.run(f"keepalived -t -f {config}")
        assert result.rc == 0, f"{name}: keepalived -t -f {config}:\n{result.stdout}{result.stderr}"


def test_requests_through_each_vip_follow_the_scheduler(lab_case):
    for service in lab_case.lab.virtual_services:
        weights = {f"<h1>{name}'s page</h1>": s.weight for name, s in service.real_servers.items()}
        cycle = sum(weights.values())
        pages = _pages(lab_case, f"{service.vip}:{service.port}", 4 * cycle)
        assert set(pages) == set(weights), pages
        if service.lb_algo == "rr":
            assert all(a != b for a, b in itertools.pairwise(pages)), f"not strictly alternating: {pages}"
        elif service.lb_algo == "wrr":
            assert Counter(pages) == {page: 4 * weight for page, weight in weights.items()}, pages


def test_replies_bypass_the_director(lab_case):
    """DR, shown twice: the client's own frames (requests to the director's MAC, replies
    from the real servers' MACs) and the director's IPVS counters (nothing outbound)."""
    service = lab_case.lab.virtual_services[0]
    master = lab_case.masters[str(service.vip)]
    record = probe.run(
        lab_case.provider.remote,
        lab_case.client,
        [
            "capture",
            "--target",
            f"{service.vip}:{service.port}",
            "--count",
            "6",
            "--iface",
            lab_case.lab.vrrp.interface,
        ],
    )[0]
    assert set(record["requests_to"]) == {lab_case.mac(master)}, record
    assert set(record["replies_from"]) == {lab_case.mac(name) for name in service.real_servers}, record
    stats = ipvs.parse(lab_case.host(master).check_output("ipvsadm -Ln --stats"))
    counters = stats[(service.protocol, str(service.vip), service.port)].stats
    assert counters["inpkts"] > 0 and counters["outpkts"] == 0 and counters["outbytes"] == 0, counters


def test_only_the_master_answers_arp_for_a_vip(lab_case):
    client = lab_case.lab.nodes[lab_case.client]
    for vip, master in lab_case.masters.items():
        record = probe.run(
            lab_case.provider.remote,
            lab_case.client,
            ["arp", "--ip", vip, "--source", str(client.address), "--iface", lab_case.lab.vrrp.interface],
        )[0]
        assert set(record["replies"]) == {lab_case.mac(master)}, record


def test_the_switch_carries_multicast_only_if_the_lab_says_so(lab_case):
    """VRRP's group, between the client and a director: what reaches a listener there."""
    listener = next(iter(lab_case.lab.role("director")))
    remote = lab_case.provider.remote
    address = str(lab_case.lab.nodes[listener].address)
    listening = probe.spawn(remote, listener, ["mcast", "--listen", "--source", address, "--wait", "4"])
    time.sleep(1.5)
    probe.run(remote, lab_case.client, ["mcast", "--source", str(lab_case.lab.nodes[lab_case.client].address)])
    received = probe.finish(listening)[-1]["received"]
    assert (received > 0) == lab_case.lab.multicast, (
        f"{received} datagrams arrived; lab multicast: {lab_case.lab.multicast}"
    )


def test_a_state_change_mails_the_client(lab_case):
    """Restart keepalived on the lowest-priority director: its new state arrives as mail."""
    director = min(lab_case.lab.role("director").items(), key=lambda item: item[1].priority or 0)[0]
    client = lab_case.host(lab_case.client)
    maildir = f"{paths.GUEST_MAILDIR}/new"
    before = set(client.check_output(f"ls {maildir} 2>/dev/null || true").split())
    lab_case.provider.stop_service(director, "keepalived")
    lab_case.provider.start_service(director, "keepalived")
    sender = str(lab_case.lab.nodes[director].address)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = set(client.check_output(f"ls {maildir} 2>/dev/null || true").split()) - before
        mails = [client.file(f"{maildir}/{name}").content_string for name in sorted(new)]
        states = [m for m in mails if f"X-Peer: ('{sender}'" in m and re.search(r"Subject: .*Entering \w+ state", m)]
        if states:
            assert f"To: {lab_case.lab.notification.to[0]}" in states[0]
            return
        time.sleep(1)
    pytest.fail(f"no state-change mail from {director} ({sender}) reached {lab_case.client} within 30 s")
