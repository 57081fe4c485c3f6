"""From an operator's keepalived.conf files to a lab, and the table of what was brought.

Each director runs its file verbatim; the lab model around it (addresses, real servers,
services, VRRP settings) is what acceptance, the failover scenarios and their bounds read,
so it is taken from keepalived's own dump where the dump has it and from the tokenized
source where it does not (virtual servers, scripts). Whatever the lab cannot model becomes
a row of the table with its consequence; when nothing runnable is left, no lab is written.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path

import yaml

from halab import spec
from halab.errors import SpecError
from halab.imports import dump, scratch, source
from halab.imports.source import ConfigRefused, Item

KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
REALSERVER_SETUP = "/usr/local/sbin/lvs-realserver"
NGINX_CONF = "/usr/local/nginx/conf/nginx.conf"
CHECKS = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "BFD_CHECK", "UDP_CHECK")
# What a director's state and priority become on the peer derived from a single file.
DERIVED_PRIORITY_STEP = 50


@dataclass(frozen=True)
class Row:
    """One line of the mapping table: what was found, what the lab does, what it cannot bring."""

    found: str
    lab: str
    missing: str = ""


@dataclass
class Director:
    """One director: its node name, the config id its keepalived reads the file with, and
    what keepalived and the tokenizer made of it."""

    name: str
    config_id: str
    conf: Path
    source: source.Source
    scratch: scratch.Scratch
    dump: dump.Dump
    derived_from: str = ""


@dataclass
class Mapping:
    """The result: the table, and the lab (plain data) with the files it places, when runnable."""

    rows: list[Row] = field(default_factory=list)
    lab: dict | None = None
    # node -> guest path -> local file to copy verbatim
    files: dict[str, dict[str, Path]] = field(default_factory=dict)
    # node -> guest path -> text written by the import (a derived peer's file)
    derived: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, found: str, lab: str, missing: str = "") -> None:
        """A row, once: the directors of one file repeat its config test's messages."""
        row = Row(found, lab, missing)
        if row not in self.rows:
            self.rows.append(row)


class NotRunnable(Exception):
    """Nothing runnable can be made; the table says why."""


# --- directors ------------------------------------------------------------------------------


def directors(confs: Sequence[Path], binary: Path, table: Mapping) -> list[Director]:
    """One Director per file, or per config id of a single file with `@id` lines, or a
    derived peer when a single file has none (state swapped, priority lowered)."""
    if len(confs) > 1:
        names = node_names(confs)
        table.add(
            f"{len(confs)} files",
            ", ".join(f"{name} runs {conf.name} verbatim" for name, conf in zip(names, confs, strict=True)),
        )
        return [_director(name, name, conf, binary, table) for name, conf in zip(names, confs, strict=True)]
    conf = confs[0]
    ids = sorted(source.conditions(conf))
    if len(ids) >= 2:
        bad = [ident for ident in ids if not spec.paths.NAME.fullmatch(ident)]
        if bad:
            raise NotRunnable(f"config ids {', '.join(bad)} cannot be node names (a-z, then a-z 0-9 -)")
        table.add(
            f"one file, @ conditionals for {', '.join(ids)}",
            f"directors {', '.join(ids)} each run it verbatim with their config id (their hostname)",
        )
        return [_director(ident, ident, conf, binary, table) for ident in ids]
    first = _director("director1", "director1", conf, binary, table)
    # Without @id lines the config id changes nothing: keepalived's view is the first's.
    second = Director("director2", "director2", conf, first.source, first.scratch, first.dump, first.name)
    table.add(
        "one file, no @ conditionals",
        "director1 runs it verbatim; director2 runs a copy with each instance's state swapped "
        f"and priority {DERIVED_PRIORITY_STEP} lower (derived, not verbatim)",
    )
    return [first, second]


def node_names(confs: Sequence[Path]) -> list[str]:
    """Each file's director: named by its file (`keepalived-server3.conf` -> server3) when that
    makes distinct node names, else director1, director2..."""
    names = [conf.stem.removeprefix("keepalived").strip("-_.").lower() or conf.parent.name.lower() for conf in confs]
    if len(set(names)) == len(names) and all(spec.paths.NAME.fullmatch(name) for name in names):
        return names
    return [f"director{n}" for n in range(1, len(confs) + 1)]


def _director(name: str, ident: str, conf: Path, binary: Path, table: Mapping) -> Director:
    read = source.read(conf, ident)
    if not read.find("vrrp_instance"):  # before keepalived echoes an unrelated file line by line
        raise NotRunnable(f"{conf.name}: no vrrp_instance block: not a keepalived.conf a lab can be made of")
    run = scratch.run(binary, read.root, read.files, conf, ident, interfaces(read))
    shown = f"{conf.name}"
    if run.test_ok:
        table.add(f"{shown}: keepalived -t", "clean")
    for line in run.test_output.splitlines():
        table.add(f"{shown}: keepalived -t", "runs it as written", line.strip())
    return Director(name, ident, conf, read, run, dump.parse(run.dump))


def interfaces(read: source.Source) -> list[str]:
    """Every interface the file names (instances, `dev` of VIPs, track_interface), valid names only."""
    names: list[str] = []
    for instance in read.find("vrrp_instance"):
        names += [instance.value("interface") or ""]
        for item in instance.find("virtual_ipaddress") + instance.find("virtual_ipaddress_excluded"):
            for entry in item.block or []:
                words = list(entry.words)
                if "dev" in words[:-1]:
                    names.append(words[words.index("dev") + 1])
        for item in instance.find("track_interface"):
            names += [entry.keyword for entry in item.block or []]
    valid = [n for n in dict.fromkeys(names) if n and _interface_ok(n)]
    return valid or ["eth0"]


def _interface_ok(name: str) -> bool:
    try:
        spec.Vrrp(interface=name)
    except ValueError:
        return False
    return True


# --- the lab --------------------------------------------------------------------------------


def build(
    confs: Sequence[Path],
    binary: Path,
    name: str,
    realserver_setup: Path | None = None,
    nginx_conf: Path | None = None,
    extra: dict[str, Path] | None = None,
) -> Mapping:
    """The table and, when something runnable can be made, the lab and its files."""
    table = Mapping()
    try:
        found = directors(confs, binary, table)
        table.lab = _lab(found, name, table)
        _place(found, table, realserver_setup, nginx_conf, extra or {})
    except (NotRunnable, ConfigRefused) as exc:
        table.add("the lab", "not written", str(exc))
        table.lab = None
    return table


def _lab(found: list[Director], name: str, table: Mapping) -> dict:
    first = found[0]
    instance = _main_instance(first)
    for other in first.dump.instances:
        if other.name != instance.name:
            table.add(
                f"vrrp_instance {other.name}",
                "runs verbatim on the directors",
                f"acceptance and failover bounds follow {instance.name} only",
            )
    services = first.source.find("virtual_server")
    subnet = _subnet(instance)
    taken = _addresses_in_use(first, instance, subnet)
    nodes: dict[str, dict] = {}
    for director in found:
        mine = _instance_named(director, instance.name)
        address = mine.source_address
        if address and IPv4Address(address) in subnet:
            table.add(f"{director.name}: unicast_src_ip {address}", "its address in the lab")
        else:
            address = str(_free(subnet, taken))
            table.add(f"{director.name}: no unicast_src_ip", f"gets the free address {address} in {subnet}")
        taken.add(IPv4Address(address))
        state = _written_state(director, instance.name)
        priority = mine.priority or 100
        if director.derived_from:
            state, priority = swapped(state), derived_priority(state, priority)
        nodes[director.name] = {"address": address, "role": "director", "state": state, "priority": priority}
        table.add(f"{director.name}: {instance.name}", f"{state} priority {priority}")
    _one_master(nodes, table)
    lab_services, real = _services(services, subnet, taken, table)
    if not lab_services:
        raise NotRunnable("no virtual_server the lab can run (see the rows above)")
    for address, server in real.items():
        nodes[server] = {"address": address, "role": "realserver"}
    client = _free(subnet, taken)
    nodes["client"] = {"address": str(client), "role": "client"}
    table.add("(no client in a keepalived.conf)", f"client at {client} sends the requests")
    lab: dict = {
        "name": name,
        "subnet": str(subnet),
        "router_id": _router_id(first),
        "nodes": nodes,
        "virtual_services": lab_services,
        "vrrp": _vrrp(instance, found, table),
        "notification": _notification(first, nodes, table),
    }
    methods = {service["lb_kind"] for service in lab_services}
    if methods == {"NAT"}:
        lab["nat"] = _nat(first, nodes, found, table)
    return lab


def _router_id(director: Director) -> str:
    """The file's router_id when a lab file can hold it; unset, keepalived takes the hostname,
    which in the lab is the node's name (and so does the model for one it cannot hold)."""
    written = [item.value("router_id") for item in director.source.find("global_defs") if item.value("router_id")]
    if written and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", written[-1] or ""):
        return written[-1] or director.name
    return director.name


def _addresses_in_use(director: Director, instance: dump.Instance, subnet: IPv4Network) -> set[IPv4Address]:
    """What a free address must not be: the VIPs, every real server and the mail server the
    file names, and the lab switch's own address."""
    words = [vip.split("/")[0] for vip in instance.vips]
    words += [director.dump.globals_.get("Smtp server", "")]
    for service in director.source.find("virtual_server"):
        words += [server.words[1] for server in service.find("real_server") if len(server.words) > 1]
    return {IPv4Address(word) for word in words if _v4(word)} | {subnet[-2]}


def _v4(text: str) -> bool:
    try:
        return ip_address(text.split("/", maxsplit=1)[0]).version == 4
    except ValueError:
        return False


def _main_instance(director: Director) -> dump.Instance:
    """The instance that holds the virtual servers' addresses (else the first with VIPs)."""
    addresses = {item.words[1] for item in director.source.find("virtual_server") if len(item.words) > 1}
    instances = director.dump.instances
    if not instances:
        raise NotRunnable(f"{director.conf.name}: keepalived loaded no vrrp_instance (see its messages above)")
    for instance in instances:
        if {vip.split("/")[0] for vip in instance.vips} & addresses:
            return instance
    with_vips = [instance for instance in instances if any(_v4(v) for v in instance.vips)]
    if not with_vips:
        raise NotRunnable("no vrrp_instance holds an IPv4 virtual_ipaddress (IPv6 is not modelled)")
    return with_vips[0]


def _written_state(director: Director, name: str) -> str:
    """The state the file writes for the instance (the dump's is the runtime one: a sync group
    with an instance in FAULT, as in the scratch namespace, wants BACKUP)."""
    for item in director.source.find("vrrp_instance"):
        if item.words[1:2] == (name,):
            return "MASTER" if item.value("state") == "MASTER" else "BACKUP"
    return "BACKUP"


def _one_master(nodes: dict[str, dict], table: Mapping) -> None:
    """All BACKUP (as nopreempt asks): the highest priority wins the first election, so the lab
    calls it MASTER; two MASTERs: the lower priority steps down to BACKUP at once."""
    directors = sorted(nodes, key=lambda name: -nodes[name]["priority"])
    masters = [name for name in directors if nodes[name]["state"] == "MASTER"]
    if len(masters) == 1:
        return
    winner = masters[0] if masters else directors[0]
    for name in directors:
        nodes[name]["state"] = "MASTER" if name == winner else "BACKUP"
    written = "all BACKUP" if not masters else f"{len(masters)} MASTERs"
    table.add(f"states: {written}", f"{winner}, the highest priority, wins the election: the lab expects it MASTER")


def _instance_named(director: Director, name: str) -> dump.Instance:
    for instance in director.dump.instances:
        if instance.name == name:
            return instance
    raise NotRunnable(f"{director.conf.name} (config id {director.config_id}) has no vrrp_instance {name}")


def _subnet(instance: dump.Instance) -> IPv4Network:
    """The lab subnet: the VIP's own prefix when the file gives one, else the /24 around it."""
    vip = next(v for v in instance.vips if _v4(v))
    try:
        network = IPv4Interface(vip if "/" in vip and not vip.endswith("/32") else f"{vip}/24").network
        return spec._subnet(str(network))
    except ValueError as exc:
        raise NotRunnable(f"the network of the VIP {vip} cannot be a lab subnet: {exc}") from None


def _free(subnet: IPv4Network, taken: set[IPv4Address]) -> IPv4Address:
    for address in subnet.hosts():
        if address not in taken:
            taken.add(address)
            return address
    raise NotRunnable(f"no free address left in {subnet}")


def _services(
    items: list[Item], subnet: IPv4Network, taken: set[IPv4Address], table: Mapping
) -> tuple[list[dict], dict[str, str]]:
    """The virtual servers the lab can run; each other one is a row saying why it is not tested."""
    services: list[dict] = []
    real: dict[str, str] = {}
    for item in items:
        where = f"virtual_server {' '.join(item.words[1:3])} ({item.where})"
        if len(item.words) < 3 or item.words[1] in ("fwmark", "group"):
            table.add(where, "runs verbatim on the directors", "fwmark and group services are not modelled: not tested")
        elif not _v4(item.words[1]):
            table.add(where, "runs verbatim on the directors", "IPv6 is not modelled: not tested")
        else:
            try:
                service = _service(item, where, subnet, real, taken, table)
            except NotRunnable as exc:
                table.add(where, "runs verbatim on the directors", f"{exc}: not tested")
                continue
            if service:
                services.append(service)
    return services, real


def _service(
    item: Item, where: str, subnet: IPv4Network, real: dict[str, str], taken: set[IPv4Address], table: Mapping
) -> dict | None:
    """One virtual_server as the lab models it, or None when none of its real servers can run."""
    kind = (item.value("lb_kind") or item.value("lvs_method") or "NAT").upper()
    service: dict = {
        "vip": item.words[1],
        "port": _number(item.words[2], where, 0),
        "protocol": (item.value("protocol") or "UDP").upper(),
        "lb_algo": item.value("lb_algo") or item.value("lvs_sched") or "wlc",
        "lb_kind": kind,
    }
    if not item.value("protocol"):
        table.add(where, "UDP, as keepalived defaults", "no protocol set: a TCP client gets no answer")
    # keepalived refuses persistence_timeout 0 (its -t says so) and runs without; so does the lab
    persistence = _number(item.value("persistence_timeout"), where, 0)
    if persistence:
        service["persistence_timeout"] = persistence
    delay_loop = _number(item.value("delay_loop"), where, 60)
    members: dict[str, dict] = {}
    for server in item.find("real_server"):
        name = _real_server(server, kind, subnet, real, taken, table)
        if name:
            members[name] = {"weight": _number(server.value("weight"), where, 1)}
            service.setdefault("health_check", _check(server, delay_loop, service["port"], table))
    if not members:
        table.add(where, "runs verbatim on the directors", "no real server the lab can run: not tested")
        return None
    service["real_servers"] = members
    table.add(where, f"{service['protocol']} {service['lb_algo']}/{kind} to {', '.join(members)}")
    return service


def _number(text: str | None, where: str, default: int) -> int:
    """A whole number as the file writes it; unset: keepalived's default; anything else
    (a fraction, a word a variable did not replace) cannot be modelled."""
    if text is None:
        return default
    if not text.isdigit() or len(text) > 9:
        raise NotRunnable(f"{where}: {text[:40]!r} is not a whole number the lab can model")
    return int(text)


def _real_server(
    server: Item, kind: str, subnet: IPv4Network, real: dict[str, str], taken: set[IPv4Address], table: Mapping
) -> str:
    """The lab node for a real_server: one per address, named real1, real2..."""
    where = f"real_server {' '.join(server.words[1:3])} ({server.where})"
    if len(server.words) < 2 or not _v4(server.words[1]):
        table.add(where, "not modelled", "not an IPv4 address: not tested")
        return ""
    address = server.words[1]
    if kind != "NAT" and IPv4Address(address) not in subnet:
        table.add(where, "not modelled", f"not in the VIPs' subnet {subnet}: {kind} needs one segment")
        return ""
    if address not in real:
        real[address] = f"real{len(real) + 1}"
        taken.add(IPv4Address(address))
        table.add(where, f"node {real[address]}: nginx on {address}")
    for check in CHECKS:
        for found in server.find(check):
            if found.first("weight"):
                table.add(
                    f"weight inside {check} ({found.first('weight').where})",  # type: ignore[union-attr]
                    "runs as written",
                    "keepalived ignores it (unknown keyword there): the real server keeps weight "
                    f"{server.value('weight') or 1}",
                )
    return real[address]


def _check(server: Item, delay_loop: int, port: int, table: Mapping) -> dict:
    """The lab's health check from the real server's first check block (TCP_CHECK/HTTP_GET model)."""
    check: dict = {"type": "TCP_CHECK", "port": port, "delay_loop": max(1, min(delay_loop, 86400))}
    found = next((c for kind in CHECKS for c in server.find(kind)), None)
    if found is None:
        table.add(f"real_server {server.words[1]}: no health check", "IPVS keeps it whatever happens")
        return check
    if found.keyword in ("HTTP_GET", "SSL_GET"):
        check["type"] = "HTTP_GET"
        url = found.first("url")
        if url:
            check["path"] = url.value("path") or "/"
            if url.value("status_code", "").isdigit():  # type: ignore[union-attr]
                check["status_code"] = int(url.value("status_code") or 200)
    if found.keyword == "SSL_GET":
        table.add(
            f"SSL_GET ({found.where})",
            "runs as written",
            "no certificates or TLS on the lab's nginx: the check fails and the real servers are dropped",
        )
    for keyword, key in (("connect_port", "port"), ("connect_timeout", "connect_timeout")):
        value = found.value(keyword) or ""
        if value.isdigit():
            check[key] = int(value)
    # nb_get_retry: HTTP_GET's old word (deprecated, still read); TCP_CHECK does not know it
    old = found.value("nb_get_retry") if found.keyword in ("HTTP_GET", "SSL_GET") else None
    retry = found.value("retry") or old or ""
    if retry.isdigit():
        check["retry"] = int(retry)
    delay = found.value("delay_before_retry") or ""
    if delay.isdigit() and int(delay) >= 1:
        check["delay_before_retry"] = int(delay)
    return check


def _vrrp(instance: dump.Instance, found: list[Director], table: Mapping) -> dict:
    vrrp: dict = {
        "virtual_router_id": instance.router_id or 51,
        "advert_int": instance.advert_seconds or 1.0,
        "version": instance.version,
        "interface": instance.interface,
        "preempt": instance.preempt,
    }
    vrrp["authentication"] = _authentication(instance, table)
    if instance.unicast_peers:
        vrrp["unicast_peers"] = [director.name for director in found]
        table.add(f"unicast_peer {' '.join(instance.unicast_peers)}", "unicast between the directors")
    table.add(
        f"vrrp_instance {instance.name}",
        f"VRID {vrrp['virtual_router_id']}, advert_int {vrrp['advert_int']:g}, VRRPv{instance.version}, "
        f"{instance.interface}, {'preempt' if instance.preempt else 'nopreempt'}",
    )
    if instance.sync_group:
        table.add(f"vrrp_sync_group {instance.sync_group}", "runs verbatim: its instances move together")
    return vrrp


def _authentication(instance: dump.Instance, table: Mapping) -> dict | None:
    """The instance's authentication as the lab file records it; a password a lab file cannot
    hold (spec.Authentication) is left out of the model: the file's own still runs."""
    kind, password = instance.auth
    types = {"SIMPLE_PASSWORD": "PASS", "IPSEC_AH": "AH"}
    if kind not in types:
        return None
    try:
        spec.Authentication(auth_type=types[kind], auth_pass=password)
    except ValueError:
        table.add(f"auth_type {types[kind]}", "runs as written", "its password is no lab-file word: the model omits it")
        return None
    return {"auth_type": types[kind], "auth_pass": password}


def _notification(director: Director, nodes: dict[str, dict], table: Mapping) -> dict:
    """Where keepalived mails; acceptance reads only what reaches the lab client's mail sink."""
    server = director.dump.globals_.get("Smtp server", "")
    if not server:
        return {}
    ours = server in {node["address"] for node in nodes.values()}
    table.add(
        f"smtp_server {server}",
        "runs as written",
        "" if ours else "mail goes where no node of the lab reads it: acceptance cannot check it (skipped)",
    )
    return {"smtp_server": server} if _v4(server) else {}


def _nat(first: Director, nodes: dict[str, dict], found: list[Director], table: Mapping) -> dict:
    """The real servers' network, and the VIP there that they route replies through (if any)."""
    servers = [IPv4Address(node["address"]) for node in nodes.values() if node["role"] == "realserver"]
    network = IPv4Interface(f"{servers[0]}/24").network
    gateway, interface = "", ""
    for instance in first.dump.instances:
        for vip in instance.vips:
            if _v4(vip) and IPv4Address(vip.split("/")[0]) in network:
                gateway, interface = vip.split("/")[0], instance.interface
    taken = {*servers, network[-2]}
    if gateway:
        table.add(f"VIP {gateway} in the real servers' {network}", "their gateway, held by VRRP")
        taken.add(IPv4Address(gateway))
    else:
        gateway = str(_free(network, taken))
        interface = "eth1"
        table.add(
            f"no VIP in the real servers' {network}",
            f"they route replies via {gateway}, which no director holds",
            "NAT replies never reach the director: requests time out (acceptance fails)",
        )
    if interface == first.dump.instances[0].interface:
        interface = "eth1"
    directors = {d.name: str(_free(network, taken)) for d in found}
    return {"subnet": str(network), "gateway": gateway, "interface": interface, "directors": directors}


# --- files placed verbatim ------------------------------------------------------------------


def _place(
    found: list[Director], table: Mapping, setup: Path | None, nginx_conf: Path | None, extra: dict[str, Path]
) -> None:
    """The files each node runs verbatim: the directors' configs (and their includes), the
    --file scripts under /etc/keepalived/, the real servers' setup and nginx.conf."""
    for director in found:
        placed: dict[str, Path] = {}
        if director.derived_from:
            table.derived.setdefault(director.name, {})[KEEPALIVED_CONF] = derive(found[0].source, director.conf)
        else:
            placed[KEEPALIVED_CONF] = director.conf
        root = director.source.root
        for path in director.source.files[1:]:
            placed["/etc/keepalived/" + str(path.relative_to(root))] = path
        placed.update({guest: local for guest, local in extra.items() if guest.startswith("/etc/keepalived/")})
        table.files[director.name] = placed
    _scripts(found, table, extra)
    _place_realservers(table, setup, nginx_conf)


def _place_realservers(table: Mapping, setup: Path | None, nginx_conf: Path | None) -> None:
    assert table.lab is not None
    placed = {REALSERVER_SETUP: setup, NGINX_CONF: nginx_conf}
    given = {guest: local for guest, local in placed.items() if local is not None}
    for name, node in table.lab["nodes"].items():
        if node["role"] == "realserver" and given:
            table.files[name] = dict(given)
    if setup:
        table.add(f"--realserver-setup {setup.name}", "each real server runs it (with `start`) instead of halab's")
    if nginx_conf:
        table.add(f"--nginx-conf {nginx_conf.name}", "each real server's nginx runs it")


def _scripts(found: list[Director], table: Mapping, extra: dict[str, Path]) -> None:
    """Every script the file refers to, supplied (--file) or not, with what a missing one does."""
    for path, where, what in _referenced(found[0].source):
        if path in extra and not extra[path].stat().st_mode & 0o100:
            table.add(
                f"{what} {path} ({where})",
                "placed verbatim from --file",
                f"{extra[path].name} is not executable: {_consequence(what)} (chmod +x it)",
            )
        elif path in extra:
            table.add(f"{what} {path} ({where})", "placed verbatim from --file")
        else:
            table.add(f"{what} {path} ({where})", "not supplied", _consequence(what))


def _referenced(read: source.Source) -> Iterator[tuple[str, str, str]]:
    for item in read.find("vrrp_script"):
        script = item.first("script")
        if script and len(script.words) > 1:
            yield script.words[1].split()[0], str(script.where), f"vrrp_script {' '.join(item.words[1:2])}"
    for block in read.find("vrrp_instance") + read.find("vrrp_sync_group"):
        for item in block.block or []:
            if item.keyword.startswith("notify") and len(item.words) > 1:
                yield item.words[1].split()[0], str(item.where), item.keyword
    for service in read.find("virtual_server"):
        for server in service.find("real_server"):
            for check in server.find("MISC_CHECK"):
                path = check.value("misc_path") or ""
                if path:
                    yield path.split()[0], str(check.where), "MISC_CHECK"


def _consequence(what: str) -> str:
    if what.startswith("vrrp_script"):
        return "keepalived disables the script: the instance no longer tracks it (no priority change, no FAULT)"
    if what == "MISC_CHECK":
        return "the check cannot run: the real server is marked down"
    return "keepalived logs the failed exec on each state change; nothing else happens"


def derive(read: source.Source, conf: Path) -> str:
    """The peer's copy of a single file: each instance's `state` swapped and `priority` moved
    by DERIVED_PRIORITY_STEP on the lines of the main file where they are written; nothing else."""
    lines = conf.read_text().split("\n")
    for instance in read.find("vrrp_instance"):
        state = instance.value("state") or "BACKUP"
        for item in instance.find("state") + instance.find("priority"):
            if item.where.file != conf.name or len(item.words) < 2:
                continue
            if item.keyword == "state":
                new = swapped(item.words[1])
            elif item.words[1].isdigit():
                new = str(derived_priority(state, int(item.words[1])))
            else:
                continue
            number = item.where.line - 1
            lines[number] = lines[number].replace(item.words[1], new, 1)
    return "\n".join(lines)


def swapped(state: str) -> str:
    return "BACKUP" if state == "MASTER" else "MASTER"


def derived_priority(state: str, priority: int) -> int:
    """The derived peer's priority: lower when the original is MASTER, higher when it is BACKUP."""
    if state == "MASTER":
        return max(1, priority - DERIVED_PRIORITY_STEP)
    return min(254, priority + DERIVED_PRIORITY_STEP)


# --- writing the lab -------------------------------------------------------------------------


def write(table: Mapping, output: Path, imported: Path) -> spec.Lab:
    """Copy the verbatim files into the lab's imported/ directory, name them in the lab, check
    the lab as any lab file is checked, and write it; a lab that fails its checks is not written."""
    assert table.lab is not None
    lab = table.lab
    staged: dict[str, tuple[bytes, bool]] = {}
    for node, placed in table.files.items():
        for guest, local in placed.items():
            staged[_stage(lab, node, guest)] = (local.read_bytes(), bool(local.stat().st_mode & 0o100))
    for node, texts in table.derived.items():
        for guest, text in texts.items():
            staged[_stage(lab, node, guest)] = (text.encode(), False)
    text = yaml.safe_dump(lab, sort_keys=False, default_flow_style=None, width=120)
    try:
        checked = spec.parse(text, str(output))
    except SpecError as exc:
        raise NotRunnable("the lab made from it is not valid: " + "; ".join(map(str, exc.problems))) from None
    shutil.rmtree(imported, ignore_errors=True)
    for relative, (data, executable) in staged.items():
        path = imported / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if executable else 0o644)  # a script stays one
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"# Written by `invoke lab.import`: the directors run the imported files verbatim.\n{text}")
    return checked


def _stage(lab: dict, node: str, guest: str) -> str:
    """The file's name under imported/ (node/guest path), recorded in the node's files."""
    relative = f"{node}/{guest.strip('/')}"
    lab["nodes"][node].setdefault("files", {})[guest] = relative
    return relative
