"""The rules that relate fields of a lab to each other.

Each rule is a small function returning the problems it finds; `problems()` runs them
all so a lab file's author sees every mistake in one go. They run only on a lab whose
fields are individually valid (see spec.parse), so each rule can trust the types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from halab import environment, pins
from halab.errors import Problem

if TYPE_CHECKING:
    from halab.spec import Lab

Rule = Callable[["Lab"], Iterator[Problem]]

# The local provider gives node i the MAC 02:xx:xx:xx:00:<i+1>, one byte: 254 nodes at most.
# Each node is a guest of about 200 MiB, so 64 is already more than a lab host runs.
MAX_NODES = 64
# Addresses one VRRP instance holds: its advert counts them in 8 bits, and keepalived moves any
# beyond to unadvertised eVIPs, which `keepalived -t` reports (seen with 2.2.7: 255 pass, 256 do
# not; at an MTU of 1500 the packet has room for more, so the count is the limit).
MAX_VIPS = 255
# Every node's sshd: the way into the lab, so no service may take it.
SSH_PORT = 22
# Whom keepalived mails on a state change; a lab is read by one or two people.
MAX_RECIPIENTS = 16
# VRRPv3 carries the advert interval in 12 bits of centiseconds: 4095 cs.
MAX_ADVERT_V3 = Decimal("40.95")


def problems(lab: Lab) -> list[Problem]:
    """Every cross-field problem of the lab, in rule order."""
    return [problem for rule in RULES for problem in rule(lab)]


def _at_most(path: str, count: int, limit: int, what: str, why: str) -> Iterator[Problem]:
    if count > limit:
        yield Problem(path, f"{count} {what}; allowed: at most {limit} ({why})")


def node_count(lab: Lab) -> Iterator[Problem]:
    """Every node needs a MAC and a guest; see MAX_NODES."""
    yield from _at_most(
        "nodes", len(lab.nodes), MAX_NODES, "nodes", "each is a guest, and the MAC scheme numbers them in one byte"
    )


# The Ansible inventory's groups, one per role (halab.inventory writes them; here, as the
# lab's rules keep every node's name apart from them).
GROUPS = {"director": "directors", "realserver": "realservers", "client": "clients"}
# With NAT, the group of the groups on the NAT network (the directors and the real servers).
NAT_GROUP = "nat_network"
# Names a node may not take because a format the lab is written into gives them a meaning:
# Ansible's implicit hosts and groups, the inventory's own groups, and the lab switch of
# `lab.show --format dot`. A node called localhost would turn `hosts: localhost` and
# `delegate_to: localhost` into ssh to an address the lab file chose.
RESERVED_NAMES = {
    "localhost": "Ansible's implicit localhost: plays for it would run over ssh on this node",
    "all": "Ansible's group of every host",
    "ungrouped": "Ansible's group of hosts in no other group",
    **{group: f"the inventory's group of every {role}" for role, group in GROUPS.items()},
    NAT_GROUP: "the inventory's group of the NAT network's nodes",
    "switch": "the lab switch in `lab.show --format dot`",
}


def node_names_mean_nothing_else(lab: Lab) -> Iterator[Problem]:
    """No node takes a name a downstream format reserves (RESERVED_NAMES)."""
    for name in lab.nodes:
        if name in RESERVED_NAMES:
            yield Problem(
                f"nodes.{name}", f"{name!r} is {RESERVED_NAMES[name]}; reserved: {', '.join(sorted(RESERVED_NAMES))}"
            )


def addresses_in_subnet(lab: Lab) -> Iterator[Problem]:
    """Nodes and VIPs sit on the lab's L2 segment (DR forwards by MAC, not by route); with NAT
    the real servers sit on the NAT network behind the directors instead (nat_network checks)."""
    usable = f"{lab.subnet[1]}..{lab.subnet[-2]}"
    behind = lab.method == "NAT" and lab.nat is not None
    owners = [
        (f"nodes.{name}.address", node.address)
        for name, node in lab.nodes.items()
        if not (behind and node.role == "realserver")
    ]
    owners += [(f"virtual_services.{i}.vip", s.vip) for i, s in enumerate(lab.virtual_services)]
    for path, address in owners:
        if address not in lab.subnet or address in (lab.subnet.network_address, lab.subnet.broadcast_address):
            yield Problem(path, f"{address} is not a usable address of subnet {lab.subnet} (allowed: {usable})")


def unique_addresses(lab: Lab) -> Iterator[Problem]:
    """Two nodes with one address, or a VIP that is also a node's address, break ARP for both."""
    holder: dict[object, str] = {}
    for name, node in lab.nodes.items():
        if node.address in holder:
            yield Problem(f"nodes.{name}.address", f"{node.address} is already the address of {holder[node.address]}")
        holder.setdefault(node.address, name)
    for i, service in enumerate(lab.virtual_services):
        if service.vip in holder:
            yield Problem(
                f"virtual_services.{i}.vip",
                f"{service.vip} collides with the address of node {holder[service.vip]}; a VIP must be free",
            )


def access_point_free(lab: Lab) -> Iterator[Problem]:
    """The subnet's last usable address is the local lab's access point (its switch's own address)."""
    reserved = lab.access_address
    for name, node in lab.nodes.items():
        if node.address == reserved:
            yield Problem(
                f"nodes.{name}.address",
                f"{reserved} is reserved for the lab switch (ssh access point); "
                f"allowed: {lab.subnet[1]}..{lab.subnet[-3]}",
            )
    for i, service in enumerate(lab.virtual_services):
        if service.vip == reserved:
            yield Problem(f"virtual_services.{i}.vip", f"{reserved} is reserved for the lab switch (ssh access point)")


def director_settings(lab: Lab) -> Iterator[Problem]:
    """Directors need a VRRP state and priority; on other roles those keys mean nothing."""
    for name, node in lab.nodes.items():
        for key in ("state", "priority"):
            value = getattr(node, key)
            if node.role == "director" and value is None:
                yield Problem(
                    f"nodes.{name}.{key}", "required for a director (state: MASTER or BACKUP, priority: 1..254)"
                )
            if node.role != "director" and value is not None:
                yield Problem(f"nodes.{name}.{key}", f"only directors have a {key}; {name} is a {node.role}")


def roles_present(lab: Lab) -> Iterator[Problem]:
    """Without a director nothing holds the VIP; without real servers or a service nothing answers."""
    for role in ("director", "realserver"):
        if not lab.role(role):
            yield Problem("nodes", f"needs at least one node with role {role}")
    if not lab.virtual_services:
        yield Problem("virtual_services", "needs at least one virtual service (a VIP with its real servers)")


def one_master(lab: Lab) -> Iterator[Problem]:
    """Exactly one MASTER per VRRP instance, and it must outrank every BACKUP.

    In active-active the second instance mirrors the first (states and priorities swapped),
    so one MASTER among the directors covers both instances.
    """
    directors = lab.role("director")
    masters = [name for name, node in directors.items() if node.state == "MASTER"]
    if directors and len(masters) != 1:
        yield Problem(
            "nodes", f"exactly one director must have state MASTER, found {len(masters)}: {masters or 'none'}"
        )
        return
    if not masters:
        return
    top = directors[masters[0]]
    for name, node in directors.items():
        if (
            name != masters[0]
            and node.priority is not None
            and top.priority is not None
            and node.priority >= top.priority
        ):
            yield Problem(
                f"nodes.{masters[0]}.priority",
                f"{top.priority} must be higher than every BACKUP's priority ({name} has {node.priority})",
            )


def vip_count(lab: Lab) -> Iterator[Problem]:
    """Every address of a VRRP instance is in its adverts (see MAX_VIPS): the VIPs, and with NAT
    the real servers' gateway, which the first instance holds with them (active-active splits
    its two VIPs between two instances, and cannot forward by NAT)."""
    gateway = lab.nat is not None and lab.method == "NAT"
    what = (
        f"addresses in one VRRP instance ({len(lab.vips)} distinct VIPs and the NAT gateway)"
        if gateway
        else "distinct VIPs"
    )
    yield from _at_most(
        "virtual_services",
        len(lab.vips) + gateway,
        MAX_VIPS,
        what,
        "a VRRP advert counts its addresses in 8 bits; keepalived -t refuses more",
    )


def active_active_shape(lab: Lab) -> Iterator[Problem]:
    """Dual master needs two directors and two VIPs: each director is MASTER of one."""
    if lab.mode != "active-active":
        return
    if len(lab.role("director")) != 2:
        yield Problem("nodes", f"active-active needs exactly 2 directors, found {len(lab.role('director'))}")
    if len(lab.vips) != 2:
        yield Problem("virtual_services", f"active-active needs exactly 2 distinct VIPs, found {len(lab.vips)}")
    if lab.vrrp.virtual_router_id == 255:
        yield Problem(
            "vrrp.virtual_router_id", "255 leaves no id for the second instance (it uses id + 1); allowed: 1..254"
        )


def advert_interval(lab: Lab) -> Iterator[Problem]:
    """VRRPv2 counts whole seconds; VRRPv3 counts centiseconds in 12 bits (at most 40.95 s).

    keepalived does not refuse either mistake: it rounds, or clamps to 40.95, and runs
    with an interval the lab file does not say.
    """
    value = lab.vrrp.advert_int
    exact = Decimal(repr(value))
    if lab.vrrp.version == 2 and value != int(value):
        yield Problem(
            "vrrp.advert_int",
            f"{value:g} is sub-second, which VRRP version 2 cannot express; "
            "use a whole number of seconds or vrrp.version: 3",
        )
    if lab.vrrp.version == 3 and exact != exact.quantize(Decimal("0.01")):
        yield Problem("vrrp.advert_int", f"{value:g} is finer than VRRPv3's centisecond resolution")
    if lab.vrrp.version == 3 and exact > MAX_ADVERT_V3:
        yield Problem(
            "vrrp.advert_int", f"{value:g} is more than VRRP version 3 can carry; allowed: 0.01..{MAX_ADVERT_V3}"
        )


def sync_daemon(lab: Lab) -> Iterator[Problem]:
    """IPVS's sync daemon sends its connection table by multicast on the VRRP interface, and
    keepalived runs one, following one VRRP instance: the lab switch must carry multicast, and
    active-active (two instances, each director MASTER of one) has no single instance to follow.
    """
    if not lab.vrrp.lvs_sync_daemon:
        return
    if not lab.multicast:
        yield Problem(
            "vrrp.lvs_sync_daemon",
            "true needs multicast: true (the IPVS sync daemon sends by multicast); allowed here: false",
        )
    if lab.mode == "active-active":
        yield Problem(
            "vrrp.lvs_sync_daemon",
            "true needs mode: active-backup (keepalived's one sync daemon follows one VRRP instance); "
            "allowed here: false",
        )


def preempt_delay(lab: Lab) -> Iterator[Problem]:
    """A preempt delay delays taking the VIP back; with nopreempt nothing is ever taken back."""
    if lab.vrrp.preempt_delay and not lab.vrrp.preempt:
        yield Problem(
            "vrrp.preempt_delay",
            f"{lab.vrrp.preempt_delay} means nothing with preempt: false (nothing is taken back); "
            "allowed here: 0, or preempt: true",
        )


def authentication_version(lab: Lab) -> Iterator[Problem]:
    """RFC 5798 removed authentication from VRRPv3; keepalived refuses it there."""
    if lab.vrrp.version == 3 and lab.vrrp.authentication is not None:
        yield Problem("vrrp.authentication", "VRRP version 3 has no authentication; set it to null or use version 2")


def unicast_peers(lab: Lab) -> Iterator[Problem]:
    """Unicast adverts go between directors, so every peer named must be one, all must be, and once."""
    peers = lab.vrrp.unicast_peers
    if not peers:
        return
    directors = lab.role("director")
    for i, name in enumerate(peers):
        if name not in directors:
            yield Problem(f"vrrp.unicast_peers.{i}", f"{name!r} is not a director; allowed: {', '.join(directors)}")
        elif name in peers[:i]:
            yield Problem(f"vrrp.unicast_peers.{i}", f"{name!r} is listed twice; list each director once")
    missing = [name for name in directors if name not in peers]
    if missing:
        yield Problem("vrrp.unicast_peers", f"must list every director; missing {', '.join(missing)}")


def multicast_or_unicast(lab: Lab) -> Iterator[Problem]:
    """Without multicast on the switch, VRRP's multicast adverts never arrive: split brain."""
    if not lab.multicast and not lab.vrrp.unicast_peers:
        yield Problem(
            "multicast",
            "false drops VRRP's multicast adverts on the lab switch; list every director in vrrp.unicast_peers",
        )


def smtp_server_known(lab: Lab) -> Iterator[Problem]:
    """A bare name must be a node of the lab (its address is used) or localhost."""
    server = lab.notification.smtp_server
    if re.fullmatch(r"[a-z][a-z0-9-]*", server) and server not in lab.nodes and server != "localhost":
        yield Problem(
            "notification.smtp_server",
            f"{server!r} is neither a node of this lab nor an address; nodes: {', '.join(lab.nodes)}",
        )


def notification_recipients(lab: Lab) -> Iterator[Problem]:
    """keepalived warns about an empty notification_email block (not silent, so not a valid config)."""
    count = len(lab.notification.to)
    if not 1 <= count <= MAX_RECIPIENTS:
        yield Problem("notification.to", f"{count} addresses; allowed: 1..{MAX_RECIPIENTS}")


def real_servers_known(lab: Lab) -> Iterator[Problem]:
    """A virtual service balances over nodes whose role is realserver."""
    servers = lab.role("realserver")
    for i, service in enumerate(lab.virtual_services):
        for name in service.real_servers:
            if name not in servers:
                yield Problem(
                    f"virtual_services.{i}.real_servers.{name}",
                    f"not a realserver node; allowed: {', '.join(servers) or 'none defined'}",
                )


def services_balance(lab: Lab) -> Iterator[Problem]:
    """A service needs a real server with a weight above 0, or nothing is ever served.

    keepalived ignores a virtual server without real servers, and warns when every weight
    is 0 (weight 0 takes a server out of rotation): neither config passes `keepalived -t`
    silently.
    """
    for i, service in enumerate(lab.virtual_services):
        if not service.real_servers:
            yield Problem(f"virtual_services.{i}.real_servers", "needs at least one real server")
        elif not any(settings.weight for settings in service.real_servers.values()):
            yield Problem(
                f"virtual_services.{i}.real_servers",
                "every weight is 0, so nothing would ever be served; allowed: at least one weight 1..65535",
            )


def unique_services(lab: Lab) -> Iterator[Problem]:
    """IPVS has one service per VIP, port and protocol; a second definition would fight the first.

    keepalived -t accepts the duplicate silently, so only the validator can say so.
    """
    first: dict[tuple, int] = {}
    for i, service in enumerate(lab.virtual_services):
        key = (service.vip, service.port, service.protocol)
        if key in first:
            yield Problem(
                f"virtual_services.{i}",
                f"{service.vip}:{service.port}/{service.protocol} is already "
                f"virtual_services.{first[key]}; each VIP, port and protocol once",
            )
        first.setdefault(key, i)


def service_ports_free(lab: Lab) -> Iterator[Problem]:
    """Real servers serve a service's port with nginx, and every node's sshd (the lab's only
    way in) already holds 22: nginx would not start, and keepalived -t cannot know."""
    for i, service in enumerate(lab.virtual_services):
        if service.port == SSH_PORT:
            yield Problem(
                f"virtual_services.{i}.port", f"{SSH_PORT} is the nodes' sshd; allowed: any other port 1..65535"
            )


def one_method(lab: Lab) -> Iterator[Problem]:
    """Real servers are wired for one forwarding method (a VIP on tunl0, or a route through the
    directors), so every service of a lab uses the same lb_kind."""
    for i, service in enumerate(lab.virtual_services):
        if service.lb_kind != lab.method:
            yield Problem(
                f"virtual_services.{i}.lb_kind",
                f"{service.lb_kind!r} differs from virtual_services.0's {lab.method!r}; "
                "the real servers are wired for one method, so every service uses the same",
            )


def nat_active_backup(lab: Lab) -> Iterator[Problem]:
    """NAT replies must return through the director that holds the connection: with one gateway
    and two MASTERs, half of the replies would reach the director that never saw the request."""
    if lab.method == "NAT" and lab.mode == "active-active":
        yield Problem(
            "mode", "active-active cannot forward by NAT (the real servers have one gateway); allowed: active-backup"
        )


NAT_SHAPE = "nat: {subnet: a.b.c.d/prefix, gateway: an address in it, interface: eth1, directors: {name: address}}"


def nat_present(lab: Lab) -> Iterator[Problem]:
    """NAT needs the real servers' network behind the directors; other methods have none."""
    if lab.method == "NAT" and lab.nat is None:
        yield Problem(
            "nat",
            f"lb_kind NAT needs the real servers' network behind the directors, and it is missing; add {NAT_SHAPE}",
        )
    if lab.method != "NAT" and lab.nat is not None:
        yield Problem("nat", f"only lb_kind NAT uses a NAT network; this lab forwards by {lab.method}: remove nat")


def nat_network(lab: Lab) -> Iterator[Problem]:
    """The NAT network: its own subnet, the gateway and every director on it, the real servers
    in it, each address usable and free (its last usable address is the local lab's access point)."""
    nat = lab.nat
    if lab.method != "NAT" or nat is None:
        return
    if nat.subnet.overlaps(lab.subnet):
        yield Problem(
            "nat.subnet", f"{nat.subnet} overlaps the lab subnet {lab.subnet}; the NAT network is a second one"
        )
        return
    if nat.interface == lab.vrrp.interface:
        yield Problem("nat.interface", f"{nat.interface} is already vrrp.interface; the directors' second NIC differs")
    reserved = nat.access_address
    usable = f"{nat.subnet[1]}..{nat.subnet[-3]}"
    owners = [("nat.gateway", nat.gateway)]
    owners += [(f"nat.directors.{name}", address) for name, address in nat.directors.items()]
    owners += [(f"nodes.{name}.address", node.address) for name, node in lab.role("realserver").items()]
    holder: dict[object, str] = {}
    for path, address in owners:
        if address not in nat.subnet or address in (nat.subnet.network_address, nat.subnet.broadcast_address, reserved):
            yield Problem(
                path,
                f"{address} is not a usable address of nat.subnet {nat.subnet} (allowed: {usable}; "
                f"{reserved} is the lab switch's)",
            )
        elif address in holder:
            yield Problem(path, f"{address} is already {holder[address]}")
        holder.setdefault(address, path)
    directors = lab.role("director")
    for name in nat.directors:
        if name not in directors:
            yield Problem(f"nat.directors.{name}", f"not a director; allowed: {', '.join(directors)}")
    missing = [name for name in directors if name not in nat.directors]
    if missing:
        yield Problem(
            "nat.directors", f"every director needs an address on the NAT network; missing {', '.join(missing)}"
        )


def node_files(lab: Lab) -> Iterator[Problem]:
    """A node runs verbatim files only where its role reads them (spec.FILE_PLACES)."""
    from halab.spec import FILE_PLACES

    for name, node in lab.nodes.items():
        places = FILE_PLACES.get(node.role, ())
        for guest in node.files:
            if not any(guest == place or (place.endswith("/") and guest.startswith(place)) for place in places):
                allowed = ", ".join(places) or "nowhere (a client runs no file of its own)"
                yield Problem(f"nodes.{name}.files.{guest}", f"a {node.role} reads no file there; allowed: {allowed}")


def versions_pinned(lab: Lab) -> Iterator[Problem]:
    """Only versions pinned with a sha256 can be fetched and verified; name the ones that can.

    A version pinned without a sum (keepalived 2.0.6) is refused by the build; saying so
    here keeps a lab file from validating and then failing minutes later.
    """
    table = pins.pinned()
    for name, version in lab.versions.model_dump().items():
        usable = ", ".join(v for v, pin in table[name].items() if pin.sha256)
        variable = environment.version_variable(name)
        origin = f" (set by {variable})" if environment.version(name) == version else ""
        if version not in table[name]:
            yield Problem(f"versions.{name}", f"{version!r}{origin} is not pinned; pinned: {usable}")
        elif not table[name][version].sha256:
            yield Problem(
                f"versions.{name}",
                f"{version!r}{origin} is pinned without a sha256, so the build refuses "
                f"it until a verified sum is added to pins.yaml; usable: {usable}",
            )


RULES: tuple[Rule, ...] = (
    node_count,
    node_names_mean_nothing_else,
    addresses_in_subnet,
    unique_addresses,
    access_point_free,
    director_settings,
    roles_present,
    one_master,
    vip_count,
    active_active_shape,
    advert_interval,
    sync_daemon,
    preempt_delay,
    authentication_version,
    unicast_peers,
    multicast_or_unicast,
    smtp_server_known,
    notification_recipients,
    real_servers_known,
    services_balance,
    unique_services,
    service_ports_free,
    one_method,
    nat_present,
    nat_network,
    nat_active_backup,
    node_files,
    versions_pinned,
)
