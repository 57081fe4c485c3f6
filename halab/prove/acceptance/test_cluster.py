"""What the write-up promises, checked on a running lab through its ssh_config.

Every check asks the nodes themselves (testinfra, or the agent on the client), so the
same checks run on any provider: VIP placement, the IPVS table, the real servers'
setup for the lab's forwarding method, routing evidence, ARP ownership, multicast on
the switch, and mail. The routing evidence is per method, from packets: DR and TUN
replies bypass the director (TUN requests reach the real servers as IP-in-IP from the
MASTER); NAT requests and replies both pass the MASTER, and the real servers see the
client's own address.
"""

from __future__ import annotations

import itertools
import re
import time
import warnings
from collections import Counter

import pytest

from halab import paths, render
from halab.prove import effective, ipvs, probe

pytestmark = pytest.mark.root
# ipvsadm's name for each forwarding method, and where a real server holds the VIPs.
IPVS_METHOD = {"DR": "Route", "NAT": "Masq", "TUN": "Tunnel"}
VIP_DEVICE = {"DR": "lo", "TUN": "tunl0"}


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
    """Whatever prefix the VIP carries: /32 as halab renders it, or an imported file's own (/24...)."""
    held = {
        name: {address.split("/")[0] for address in _addresses(lab_case, name, lab_case.lab.vrrp.interface)}
        for name in lab_case.lab.role("director")
    }
    for vip, master in lab_case.masters.items():
        holders = [name for name, addresses in held.items() if vip in addresses]
        assert holders == [master], f"{vip} is on {holders or 'no director'}, expected {master} alone"
    if lab_case.lab.mode == "active-backup":
        backups = [name for name in held if name not in lab_case.masters.values()]
        assert backups and all(not held[b] & set(lab_case.masters) for b in backups)


def test_the_masters_ipvs_table_matches_the_lab_file(lab_case):
    for service in lab_case.lab.virtual_services:
        master = lab_case.masters[str(service.vip)]
        table = ipvs.parse(lab_case.host(master).check_output("ipvsadm -Ln"))
        found = table.get((service.protocol, str(service.vip), service.port))
        assert found, f"no IPVS service {service.protocol} {service.vip}:{service.port} on {master}: {table}"
        assert found.scheduler == service.lb_algo
        expected = {
            (str(lab_case.lab.nodes[name].address), service.port, IPVS_METHOD[service.lb_kind], settings.weight)
            for name, settings in service.real_servers.items()
        }
        assert {(d.address, d.port, d.method, d.weight) for d in found.destinations} == expected


@pytest.fixture
def real_servers(lab_case) -> list[str]:
    return list(lab_case.lab.role("realserver"))


def test_real_servers_hold_every_vip_as_a_host_route_on_lo_or_tunl0(lab_case, real_servers):
    """DR: on lo; TUN: on tunl0, where the IP-in-IP packets are unwrapped (reverse-path
    filtering off there, or the kernel drops a client's packet arriving on tunl0)."""
    if lab_case.lab.method == "NAT":
        pytest.skip("NAT real servers hold no VIP (the director rewrites the destination); see the gateway test")
    device = VIP_DEVICE[lab_case.lab.method]
    for name in real_servers:
        held = _addresses(lab_case, name, device)
        assert {f"{vip}/32" for vip in lab_case.lab.vips} <= held, f"{name}: {device} has {sorted(held)}"
        if device == "tunl0":
            host = lab_case.host(name)
            assert host.sysctl("net.ipv4.conf.tunl0.rp_filter") == 0 and host.sysctl("net.ipv4.conf.all.rp_filter") == 0


def test_nat_real_servers_route_through_the_gateway_the_master_holds(lab_case, real_servers):
    """NAT: the kernel of every real server sends a reply from its own address to the client
    via the gateway (whatever other default route a management NIC brings), and the gateway
    sits with the VIP on the MASTER's NAT interface alone (the BACKUP takes both over together)."""
    nat = lab_case.lab.nat
    if nat is None:
        pytest.skip(f"{lab_case.lab.method} has no gateway: real servers reply straight to the client")
    client = lab_case.lab.nodes[lab_case.client].address
    for name in real_servers:
        address = lab_case.lab.nodes[name].address
        route = lab_case.host(name).check_output(f"ip -4 route get {client} from {address}")
        assert f"via {nat.gateway} " in f"{route} ", f"{name}: a reply to the client {client} takes {route!r}"
        assert not any(f"{vip}/32" in _addresses(lab_case, name, "lo") for vip in lab_case.lab.vips)
    master = lab_case.masters[str(lab_case.lab.vips[0])]
    holders = [
        name
        for name in lab_case.lab.role("director")
        if f"{nat.gateway}/32" in _addresses(lab_case, name, nat.interface)
    ]
    assert holders == [master], f"gateway {nat.gateway} on {holders or 'no director'}, expected {master} alone"


def test_real_servers_never_answer_arp_for_a_vip(lab_case, real_servers):
    if lab_case.lab.method == "NAT":
        pytest.skip("NAT real servers hold no VIP, so they have none to keep quiet about")
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


# keepalived -t's exit status (lib/scheduler.h): 4, it cannot run the file (missing file,
# bad interface, fatal); 5, it runs the file despite errors it names (unknown keywords, invalid
# or deprecated values: each ignored or replaced, the rest applied); 6, scripts it will not run.
CONFIG_RUNS_ANYWAY = 5


def test_keepalived_config_is_clean_on_every_director(lab_case, request):
    """halab's own rendering must be clean: any complaint is its bug. An imported file is the
    operator's, run verbatim: keepalived's complaints about it are findings, shown as warnings
    (terminal, JSON, report), as long as keepalived runs it; the other checks prove what the
    file does as keepalived applies it. One it cannot run fails."""
    complaints = {}
    for name, node in lab_case.lab.role("director").items():
        host = lab_case.host(name)
        command = host.check_output("cat /proc/$(pidof -s keepalived)/cmdline | tr '\\0' ' '").split()
        config = command[command.index("-f") + 1] if "-f" in command else "/etc/keepalived/keepalived.conf"
        result = host.run(f"keepalived -t -f {config}")
        said = f"{name}: keepalived -t -f {config} (exit {result.rc}):\n{result.stdout}{result.stderr}"
        assert result.rc == 0 or (render.runs_imported_conf(node) and result.rc == CONFIG_RUNS_ANYWAY), said
        if result.rc:
            complaints[name] = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if complaints:
        request.node.user_properties.append(("warnings", complaints))
        for name, lines in complaints.items():
            summary = f"{name}'s imported keepalived.conf runs, with: " + "; ".join(lines)
            warnings.warn(KeepalivedComplaint(summary), stacklevel=1)


class KeepalivedComplaint(UserWarning):
    """keepalived's config test complained about an imported file it still runs."""


def test_keepalived_runs_the_check_timings_the_bounds_assume(lab_case):
    """The MASTER's keepalived, asked for its running configuration (SIGUSR1), runs every real
    server's check with the lab's delay_loop, connect_timeout, retry and delay_before_retry,
    or, where the file leaves them unset, with the defaults halab.spec assumes (1 retry after
    1 s; 3 s for HTTP_GET): the numbers every real-server bound is made of."""
    checks = effective.read(lab_case.provider)
    service = lab_case.lab.virtual_services[0]
    assert {c.server for c in checks} >= {str(lab_case.lab.nodes[n].address) for n in service.real_servers}, checks
    assert effective.applied(lab_case.lab, checks)[1] == [], [c.words() for c in checks]
    assert {c.method for c in checks} == {service.health_check.type}


# keepalived's checker logs each change it makes to a virtual server's pool (check/ipwrapper.c).
POOL_CHANGE = re.compile(r"(Removing|Adding|Disabling|Enabling) service|Changing weight")
SCHEDULER_TRIES = 3


def _pool_changes(case, master: str) -> int:
    """How many pool changes the MASTER's checker has logged so far."""
    log = case.host(master).check_output(case.provider.log_command("keepalived"))
    return len(POOL_CHANGE.findall(log))


def _pages_from_a_stable_pool(case, service, count: int) -> list[str]:
    """The pages of `count` requests during which the health checker left the pool alone.

    A check that times out on a loaded host takes a real server out for a few seconds and
    the scheduler starts its cycle again: that run says nothing about the scheduler, so it
    is repeated (CI once saw 7:5 for weights 2:1 across such a change)."""
    master = case.masters[str(service.vip)]
    for _ in range(SCHEDULER_TRIES):
        before = _pool_changes(case, master)
        pages = _pages(case, f"{service.vip}:{service.port}", count)
        if _pool_changes(case, master) == before:
            return pages
    pytest.fail(f"the checker on {master} changed the pool of {service.vip} during each of {SCHEDULER_TRIES} tries")


def test_requests_through_each_vip_follow_the_scheduler(lab_case):
    """Round robin alternates, weighted round robin follows the weights; with persistence
    one client stays on one real server (that is the design, not a fault)."""
    for service in lab_case.lab.virtual_services:
        weights = {f"<h1>{name}'s page</h1>": s.weight for name, s in service.real_servers.items()}
        cycle = sum(weights.values())
        pages = _pages_from_a_stable_pool(lab_case, service, 4 * cycle)
        if service.persistence_timeout:
            assert len(set(pages)) == 1 and set(pages) <= set(weights), f"persistence: one server expected: {pages}"
            continue
        assert set(pages) == set(weights), pages
        if service.lb_algo == "rr":
            assert all(a != b for a, b in itertools.pairwise(pages)), f"not strictly alternating: {pages}"
        elif service.lb_algo == "wrr":
            assert Counter(pages) == {page: 4 * weight for page, weight in weights.items()}, pages


IPVS_SUM_INTERVAL = 2.5  # seconds: the kernel's 2 s, and a margin


def _capture(case, service, count: int = 6) -> dict:
    """Requests from the client to the service while it records its own frames."""
    target = f"{service.vip}:{service.port}"
    args = ["capture", "--target", target, "--count", str(count), "--iface", case.lab.vrrp.interface]
    return probe.run(case.provider.remote, case.client, args)[0]


# A listener's longest window: it stops once the check is done with it (finish closes its
# stdin), so this only bounds one left behind.
LISTENING = ["--wait", "60"]


def _capture_heard_by_real_servers(case, service) -> tuple[dict, dict[str, dict]]:
    """The client's capture, while each real server records the SYNs that reach it."""
    remote = case.provider.remote
    listeners = {
        name: probe.spawn(
            remote, name, ["listen", "--iface", case.lab.vrrp.interface, "--port", str(service.port), *LISTENING]
        )
        for name in service.real_servers
    }
    for process in listeners.values():
        probe.started(process)  # bound: from here on, every SYN reaching it counts
    record = _capture(case, service)  # its requests answered: their SYNs have arrived
    return record, {name: probe.finish(process)[-1] for name, process in listeners.items()}  # stdin closed: they stop


def _checkers(case) -> set[str]:
    """Where the directors' health checks come from on the real servers' network (their SYNs
    reach the real servers too)."""
    nat = case.lab.nat
    directors = case.lab.role("director")
    return {str(nat.directors[name]) if nat else str(node.address) for name, node in directors.items()}


def _counters(case, service, master: str) -> dict:
    """The MASTER's IPVS counters for the service, once they include the traffic just sent:
    the kernel sums its per-CPU counters every 2 s (its rate estimator's timer), so a read
    right after a capture can miss it (a freshly booted TUN lab read all zeros)."""
    time.sleep(IPVS_SUM_INTERVAL)
    stats = ipvs.parse(case.host(master).check_output("ipvsadm -Ln --stats"))
    return stats[(service.protocol, str(service.vip), service.port)].stats


def test_replies_bypass_the_director(lab_case, request):
    """DR and TUN, shown twice: the client's own frames (requests to the director's MAC,
    replies from the real servers' MACs) and the director's IPVS counters (nothing outbound)."""
    if lab_case.lab.method == "NAT":
        pytest.skip("NAT replies pass the director by design; see the NAT test")
    service = lab_case.lab.virtual_services[0]
    master = lab_case.masters[str(service.vip)]
    record = _capture(lab_case, service)
    counters = _counters(lab_case, service, master)
    request.node.user_properties.append(("packets", _evidence(lab_case, record, counters)))
    assert set(record["requests_to"]) == {lab_case.mac(master)}, record
    servers = {lab_case.mac(name) for name in service.real_servers}
    if service.persistence_timeout:  # the client is pinned: every reply from the one server in use
        assert len(set(record["replies_from"])) == 1 and set(record["replies_from"]) <= servers, record
    else:
        assert set(record["replies_from"]) == servers, record
    assert counters["inpkts"] > 0 and counters["outpkts"] == 0 and counters["outbytes"] == 0, counters


def test_tun_real_servers_receive_ip_in_ip_from_the_master(lab_case, request):
    """TUN: each real server's NIC sees the client's SYNs wrapped in protocol 4, wrapped by the
    MASTER (its MAC and address outside), and unwrapped they still carry the client's address."""
    if lab_case.lab.method != "TUN":
        pytest.skip(f"{lab_case.lab.method} sends no IP-in-IP")
    service = lab_case.lab.virtual_services[0]
    master = lab_case.masters[str(service.vip)]
    record, heard = _capture_heard_by_real_servers(lab_case, service)
    request.node.user_properties.append(
        ("packets", {**_evidence(lab_case, record, {}), "heard_by_real_servers": heard})
    )
    assert not any(page.startswith("FAILED") for page in record["pages"]), record
    wrapper = f"{lab_case.mac(master)} {lab_case.lab.nodes[master].address}"
    client = str(lab_case.lab.nodes[lab_case.client].address)
    for name, seen in heard.items():
        assert set(seen["ipip_from"]) == {wrapper} and seen["ipip_from"][wrapper] > 0, (name, seen)
        assert seen["syn_from"].get(client, 0) > 0 and set(seen["syn_from"]) <= {client} | _checkers(lab_case)


def test_nat_requests_and_replies_both_pass_the_master(lab_case, request):
    """NAT, shown three ways: the client's frames (requests to and replies from the MASTER's
    MAC), the MASTER's IPVS counters (packets outbound), and the real servers' own capture
    (the client's address as the source: NAT rewrites the destination only)."""
    if lab_case.lab.method != "NAT":
        pytest.skip(f"{lab_case.lab.method} replies bypass the director; see test_replies_bypass_the_director")
    service = lab_case.lab.virtual_services[0]
    master = lab_case.masters[str(service.vip)]
    record, heard = _capture_heard_by_real_servers(lab_case, service)
    counters = _counters(lab_case, service, master)
    request.node.user_properties.append(
        ("packets", {**_evidence(lab_case, record, counters), "heard_by_real_servers": heard})
    )
    assert set(record["requests_to"]) == {lab_case.mac(master)}, record
    assert set(record["replies_from"]) == {lab_case.mac(master)}, record
    assert counters["inpkts"] > 0 and counters["outpkts"] > 0 and counters["outbytes"] > 0, counters
    client = str(lab_case.lab.nodes[lab_case.client].address)
    for name, seen in heard.items():
        assert seen["syn_from"].get(client, 0) > 0 and not seen["ipip_from"], (name, seen)
        assert set(seen["syn_from"]) <= {client} | _checkers(lab_case), (name, seen)


def _evidence(lab_case, record: dict, counters: dict) -> dict:
    """The packets a routing check judged, for the reports (a property in acceptance.xml, a
    key in acceptance.json; recorded before the asserts, so a failure carries them too): whose
    MACs the client's requests went to and replies came from (named: the directors, and the
    real servers where they share the client's switch), and the MASTER's IPVS counters."""
    service = lab_case.lab.virtual_services[0]
    shown = [*lab_case.lab.role("director"), *([] if lab_case.lab.method == "NAT" else service.real_servers)]
    names = {lab_case.mac(node): node for node in shown}
    return {
        "method": lab_case.lab.method,
        "requests_to": {names.get(mac, mac): count for mac, count in record["requests_to"].items()},
        "replies_from": {names.get(mac, mac): count for mac, count in record["replies_from"].items()},
        "master_ipvs": counters,
    }


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
    listening = probe.spawn(remote, listener, ["mcast", "--listen", "--source", address, *LISTENING])
    probe.started(listening)  # joined: from here on, what the switch carries arrives
    probe.run(remote, lab_case.client, ["mcast", "--source", str(lab_case.lab.nodes[lab_case.client].address)])
    time.sleep(0.5)  # the last datagram's way across the switch
    received = probe.finish(listening)[-1]["received"]  # stdin closed: it stops
    assert (received > 0) == lab_case.lab.multicast, (
        f"{received} datagrams arrived; lab multicast: {lab_case.lab.multicast}"
    )


def test_a_state_change_mails_the_client(lab_case):
    """Restart keepalived on the lowest-priority director: its new state arrives as mail.
    Only where the lab sends mail to its sink (the client's SMTP server): a lab whose
    smtp_server is elsewhere (the default 127.0.0.1, on each director) has none to check."""
    smtp = render.smtp_server(lab_case.lab)
    if smtp != str(lab_case.lab.nodes[lab_case.client].address):
        pytest.skip(f"n/a: notification.smtp_server is {smtp}, not the client's mail sink: no mail to check")
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
