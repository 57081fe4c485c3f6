"""Network fault primitives: what operators' networks do to a VRRP pair, each with its heal.

Each lives where it does in the field, so each provider runs the same scenarios:

- inside a node, with the node's own tools, as an operator's firewall or a lossy NIC would
  be: `vrrp-blocked` (the BACKUP's firewall drops IP protocol 112), `director-partition`
  (each director's firewall drops the other's packets: clients and real servers still reach
  both), `advert-loss` (netem loss on the MASTER's lab interface, VRRP only), `link-flap`
  (the provider's own link cut and restore, several times). The firewall is nftables when
  the node has `nft`, else iptables (FIREWALL); everything it adds sits in a table (nft) or chain
  (iptables) of its own, `halab`, so the heal removes exactly that and `remains` lists it.
- on the lab switch, as a hypervisor or a cloud network would drop frames:
  `multicast-dropped` (224.0.0.18), `one-way` (the MASTER's adverts towards the BACKUP
  only), `garp-lost` (the gratuitous ARPs of a takeover towards the client, which caches
  ARP as a router does for the while: its own settings saved and restored). Only a
  provider whose switch halab runs (the local lab's bridge) has these; another refuses
  them with one line (halab.providers.base.Provider.filter_switch).

Every primitive's `remains` lists what the node or switch holds (rules, qdiscs, filters),
never trusts the heal's exit code.
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

from halab.providers.base import Provider

if TYPE_CHECKING:  # halab.providers.faults imports this module to register NETWORK
    from halab.providers.faults import Check, Fault, Verb

# The guest kernels of the local lab load nothing by themselves (their modules sit under
# the host's UML package, found with `modprobe -d`, as guest.sh does); a VM loads on demand.
MODULES = "nf_tables nft_compat x_tables ip_tables iptable_filter sch_prio sch_netem cls_u32"
LOAD = f"if [ -d /run/modules ]; then for m in {MODULES}; do modprobe -d /run/modules $m 2>/dev/null; done; fi"
TABLE = "halab"  # the nft table, or iptables chain, holding every rule a fault adds
VRRP = 112  # IP protocol number of VRRP (v2 and v3)
MULTICAST = "224.0.0.18"  # VRRP's IPv4 group
# advert-loss: the loss rate (percent) when a scenario gives none.
LOSS = 50.0
# link-flap: how many times the link goes down and up, when a scenario gives none.
FLAPS = 3
# garp-lost: keepalived's garp_master_delay (the lab file does not set it): the second burst
# of gratuitous ARPs after a takeover comes this long after the first.
GARP_DELAY = 5.0
# garp-lost: the client caches ARP as a router does: gratuitous ARP creates no entry
# (arp_accept 0) and an entry stays reachable long (base_reachable_time). Routers keep
# entries for minutes to hours (Cisco IOS: 4 h); 60 s (twice Linux's default) keeps a run
# minutes long while the bound, which scales with it, shows the effect.
ROUTER_REACHABLE = 60.0
# Where the client keeps its own ARP settings while the fault holds (its /run: gone with it).
ARP_SAVED = "/run/halab-garp-arp"


# The node's own firewall tool: nftables when it has `nft`; else iptables, the legacy
# backend first (the local lab's guest kernels have ip_tables but no IPv4 nf_tables, which
# the host's iptables-nft would need).
FIREWALL = (
    "if command -v nft >/dev/null 2>&1; then FW=nft; "
    "elif command -v iptables-legacy >/dev/null 2>&1; then FW=iptables-legacy; else FW=iptables; fi"
)
CHAIN = TABLE.upper()


def _firewall_add(matches: list[str]) -> str:
    """A shell line dropping incoming packets that match each entry of `matches` (written
    once per tool: "nft expression|iptables arguments"), in the `halab` table or chain."""
    nft = [f"nft add rule inet {TABLE} input {m.split('|')[0]} drop" for m in matches]
    ipt = [f"$FW -A {CHAIN} {m.split('|')[1]} -j DROP" for m in matches]
    return (
        f"{LOAD}; {FIREWALL}; if [ $FW = nft ]; then "
        f"nft add table inet {TABLE} && "
        f"nft add chain inet {TABLE} input '{{ type filter hook input priority -10; policy accept; }}' && "
        + " && ".join(nft)
        + f"; else $FW -N {CHAIN} && $FW -I INPUT -j {CHAIN} && "
        + " && ".join(ipt)
        + "; fi"
    )


FIREWALL_HEAL = (
    f"{FIREWALL}; if [ $FW = nft ]; then nft delete table inet {TABLE} 2>/dev/null; "
    f"else $FW -D INPUT -j {CHAIN} 2>/dev/null; $FW -F {CHAIN} 2>/dev/null; $FW -X {CHAIN} 2>/dev/null; fi; true"
)
# Prints whatever of the halab table or chain is left, nothing when the firewall is clean.
FIREWALL_LEFT = (
    f"{FIREWALL}; if [ $FW = nft ]; then nft list table inet {TABLE} 2>/dev/null; "
    f"else $FW -S 2>/dev/null | grep -w {CHAIN}; fi; true"
)


def _netem_add(nic: str, loss: float) -> str:
    """Loss on nic's VRRP packets only: a prio qdisc whose fourth band (netem) gets what a u32
    filter matches as IP protocol 112; every other packet keeps the default bands."""
    dev = shlex.quote(nic)
    return (
        f"{LOAD}; tc qdisc add dev {dev} root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 && "
        f"tc qdisc add dev {dev} parent 1:4 handle 40: netem loss {loss:g}% && "
        f"tc filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip protocol {VRRP} 0xff flowid 1:4"
    )


def _netem_heal(nic: str) -> str:
    return f"tc qdisc del dev {shlex.quote(nic)} root 2>/dev/null; true"


def _netem_left(nic: str) -> str:
    """Prints any prio or netem qdisc, or any filter, left on nic."""
    dev = shlex.quote(nic)
    return f"tc qdisc show dev {dev} | grep -E 'qdisc (netem|prio) '; tc filter show dev {dev}; true"


def peer(provider: Provider, director: str) -> str:
    """The other director of the pair (the first other one a lab lists)."""
    return next(name for name in provider.lab.role("director") if name != director)


def _address(provider: Provider, node: str) -> str:
    return str(provider.lab.nodes[node].address)


# --- in-node faults -------------------------------------------------------------------


def _left_on(provider: Provider, node: str, command: str, what: str) -> str:
    """What `command` (a listing) prints on node, as a remains line; "" when it prints nothing."""
    listing = provider.remote.check(node, command, timeout=20).strip()
    return f"{what} on {node}: {' '.join(listing.split())[:200]}" if listing else ""


def _block_vrrp(provider: Provider, fault: Fault) -> None:
    provider.remote.check(fault.node, _firewall_add([f"ip protocol {VRRP}|-p {VRRP}"]), timeout=30)


def _firewall_left(provider: Provider, fault: Fault) -> str:
    return _left_on(provider, fault.node, FIREWALL_LEFT, "firewall rules left")


def _heal_firewall(provider: Provider, fault: Fault) -> None:
    provider.remote.check(fault.node, FIREWALL_HEAL, timeout=30)


def _partition(provider: Provider, fault: Fault) -> None:
    """Each director drops every packet from the other (its lab address): VRRP, and anything
    else between them; clients and real servers still reach both."""
    other = peer(provider, fault.node)
    for node, source in ((fault.node, other), (other, fault.node)):
        address = _address(provider, source)
        provider.remote.check(node, _firewall_add([f"ip saddr {address}|-s {address}"]), timeout=30)


def _heal_partition(provider: Provider, fault: Fault) -> None:
    for node in (fault.node, peer(provider, fault.node)):
        provider.remote.check(node, FIREWALL_HEAL, timeout=30)


def _partition_left(provider: Provider, fault: Fault) -> str:
    pair = (fault.node, peer(provider, fault.node))
    left = [_left_on(provider, node, FIREWALL_LEFT, "firewall rules left") for node in pair]
    return "; ".join(line for line in left if line)


def _lose_adverts(provider: Provider, fault: Fault) -> None:
    """The loss on, held for `seconds` (the window whose takeovers count), then returns."""
    provider.remote.check(fault.node, _netem_add(provider.lab.vrrp.interface, fault.amount or LOSS), timeout=30)
    time.sleep(fault.seconds)


def _heal_loss(provider: Provider, fault: Fault) -> None:
    provider.remote.check(fault.node, _netem_heal(provider.lab.vrrp.interface), timeout=30)


def _loss_left(provider: Provider, fault: Fault) -> str:
    return _left_on(provider, fault.node, _netem_left(provider.lab.vrrp.interface), "qdisc or filter left")


def _flap(provider: Provider, fault: Fault) -> None:
    """The link down for `seconds`, up for `seconds`, `amount` times (FLAPS by default): it
    ends up, so the flap's heal has nothing to do but check."""
    for _ in range(int(fault.amount or FLAPS)):
        provider.cut_link(fault.node)
        time.sleep(fault.seconds)
        provider.restore_link(fault.node)
        time.sleep(fault.seconds)


def _flap_left(provider: Provider, fault: Fault) -> str:
    from halab.providers.faults import PRIMITIVES

    return PRIMITIVES["link"].remains(provider, fault)


# --- switch faults --------------------------------------------------------------------


def switch_rules(provider: Provider, fault: Fault) -> list[list[str]]:
    """The switch's drop rules for a switch fault, in ebtables's match syntax (the local lab's
    switch is a Linux bridge): every value is the lab's own (a validated address, a MAC and a
    port halab names), passed as arguments, never through a shell."""
    if fault.primitive == "multicast-dropped":
        return [["-p", "IPv4", "--ip-dst", MULTICAST, "-j", "DROP"]]
    if fault.primitive == "one-way":
        backup = peer(provider, fault.node)
        source, port = provider.switch_mac(fault.node), provider.switch_port(backup)
        return [["-p", "IPv4", "--ip-proto", str(VRRP), "-s", source, "-o", port, "-j", "DROP"]]
    client = provider.switch_port(provider.lab.client)
    return [
        ["-p", "ARP", "--arp-ip-src", str(vip), "--arp-gratuitous", "-o", client, "-j", "DROP"]
        for vip in provider.lab.vips
    ]


def _filter(provider: Provider, fault: Fault) -> None:
    for rule in switch_rules(provider, fault):
        provider.filter_switch(rule, add=True)


def _unfilter(provider: Provider, fault: Fault) -> None:
    """Every rule of the fault deleted, one already gone passed over: `remains` is the check."""
    for rule in switch_rules(provider, fault):
        provider.filter_switch(rule, add=False, missing_ok=True)


def _switch_left(provider: Provider, fault: Fault) -> str:
    left = provider.switch_filters()
    return f"{len(left)} filter(s) left on the lab switch: {'; '.join(left)}" if left else ""


def _client_arp(provider: Provider) -> tuple[str, str]:
    """The client's sysctl keys (slash form: any NIC name) for ARP creation and ageing."""
    nic = provider.lab.vrrp.interface
    return f"net/ipv4/conf/{nic}/arp_accept", f"net/ipv4/neigh/{nic}/base_reachable_time_ms"


def _router_arp(provider: Provider) -> str:
    """Save the client's ARP settings (once), then cache as a router does."""
    accept, reachable = map(shlex.quote, _client_arp(provider))
    return (
        f"{{ [ -e {ARP_SAVED} ] || {{ sysctl -n {accept} {reachable} > {ARP_SAVED}.new && "
        f"mv {ARP_SAVED}.new {ARP_SAVED}; }}; }} && sysctl -qw {accept}=0 {reachable}={ROUTER_REACHABLE * 1000:.0f}"
    )


def _own_arp(provider: Provider) -> str:
    """The client's saved ARP settings back, the saved copy gone."""
    accept, reachable = map(shlex.quote, _client_arp(provider))
    return (
        f"if [ -e {ARP_SAVED} ]; then set -- $(cat {ARP_SAVED}) && [ $# = 2 ] && "
        f"sysctl -qw {accept}=$1 {reachable}=$2 && rm -f {ARP_SAVED}; fi"
    )


def _arp_left(provider: Provider) -> str:
    """Prints what of the router-like ARP is left on the client, nothing when none is."""
    reachable = shlex.quote(_client_arp(provider)[1])
    return (
        f"[ -e {ARP_SAVED} ] && echo saved settings not restored: $(cat {ARP_SAVED}); "
        f'[ "$(sysctl -n {reachable})" = {ROUTER_REACHABLE * 1000:.0f} ] && echo {reachable} still router-like; true'
    )


def _garp_lost(provider: Provider, fault: Fault) -> None:
    """The switch drops the VIPs' gratuitous ARPs towards the client, which caches ARP as a
    router does; then the MASTER's keepalived stops cleanly: the BACKUP takes over, and the
    client is not told. The filter stays `seconds` (the takeover's bursts: at once, and
    garp_master_delay later), then goes: what comes later (garp_master_refresh, if set)
    reaches the client as it would."""
    _filter(provider, fault)
    provider.remote.check(provider.lab.client, _router_arp(provider), timeout=20)
    provider.stop_service(fault.node, "keepalived")
    time.sleep(fault.seconds)
    _unfilter(provider, fault)


def _garp_healed(provider: Provider, fault: Fault) -> None:
    """keepalived back on the MASTER (the filter is long gone; deleted again, if still there),
    the client's own ARP settings back."""
    _unfilter(provider, fault)
    try:
        provider.remote.check(provider.lab.client, _own_arp(provider), timeout=20)
    finally:  # keepalived back whatever the client said (remains then names what is left)
        provider.start_service(fault.node, "keepalived")


def _garp_left(provider: Provider, fault: Fault) -> str:
    from halab.providers.faults import PRIMITIVES, Fault

    keepalived = Fault("service", fault.node, "keepalived")
    left = [
        _switch_left(provider, fault),
        _left_on(provider, provider.lab.client, _arp_left(provider), "router-like ARP left"),
        PRIMITIVES["service"].remains(provider, keepalived),
    ]
    return "; ".join(line for line in left if line)


NETWORK: dict[str, tuple[str, str, Verb, Verb, Check]] = {
    "vrrp-blocked": (
        "{node}'s firewall drops VRRP (IP protocol 112)",
        "remove {node}'s VRRP drop rule",
        _block_vrrp,
        _heal_firewall,
        _firewall_left,
    ),
    "director-partition": (
        "partition the directors ({node} and its peer drop each other's packets)",
        "end the directors' partition",
        _partition,
        _heal_partition,
        _partition_left,
    ),
    "advert-loss": (
        "lose {amount:g} % of {node}'s VRRP adverts (netem) for {seconds:g} s",
        "end the loss on {node}",
        _lose_adverts,
        _heal_loss,
        _loss_left,
    ),
    "link-flap": (
        "flap {node}'s link ({amount:g} x {seconds:.1f} s down, {seconds:.1f} s up)",
        "check {node}'s link is up",
        _flap,
        lambda provider, fault: None,
        _flap_left,
    ),
    "multicast-dropped": (
        "the lab switch drops multicast to 224.0.0.18",
        "the lab switch carries multicast again",
        _filter,
        _unfilter,
        _switch_left,
    ),
    "one-way": (
        "the lab switch drops {node}'s adverts towards its peer (one way)",
        "the lab switch carries {node}'s adverts again",
        _filter,
        _unfilter,
        _switch_left,
    ),
    "garp-lost": (
        "stop keepalived on {node} while the lab switch drops the takeover's gratuitous ARPs to the client",
        "start keepalived on {node}",
        _garp_lost,
        _garp_healed,
        _garp_left,
    ),
}
"""Each a Primitive's fields: registered into halab.providers.faults.PRIMITIVES at its end."""
