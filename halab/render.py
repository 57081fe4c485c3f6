"""Every file a node needs, from the lab model: a pure function, no I/O but templates.

`render(lab)` returns {relative path: text}. Paths start with the node's name and
mirror where the file lives on that node (`server3/etc/keepalived/keepalived.conf`),
so a provider installs a node's tree by copying it to `/`. `lab.json` describes the
lab for the Vagrantfile and the tests.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import jinja2

from halab import environment
from halab.errors import Problem, SpecError
from halab.spec import Lab, Node, shown

KEEPALIVED_CONF = "etc/keepalived/keepalived.conf"
NGINX_CONF = "usr/local/nginx/conf/nginx.conf"
INDEX_HTML = "usr/local/nginx/html/index.html"
REALSERVER_SCRIPT = "usr/local/sbin/lvs-realserver"
# keepalived's notify script on a director: every VRRP state change with its time (NOTIFY_LOG).
NOTIFY_SCRIPT = "usr/local/sbin/halab-notify"
NOTIFY_LOG = "/var/log/halab-notify.log"
DIRECTOR_SYSCTL = "etc/sysctl.d/90-lvs-director.conf"
# keepalived's own unit reads its options from here (the build's sysconfdir, /etc/sysconfig linked to it).
KEEPALIVED_OPTIONS = "etc/sysconfig/keepalived"
# Not in the write-up, and needed: without it IPVS keeps forwarding a client whose source
# port matches an old connection entry (in DR the director only sees the client's half,
# so entries linger for minutes) to a real server that was already removed. With it,
# such a SYN expires the stale entry and is scheduled afresh to a live server.
DIRECTOR_SYSCTLS = {"net.ipv4.vs.expire_nodest_conn": 1, "net.ipv4.vs.expire_quiescent_template": 1}

# One plain word in all three languages the templates write (keepalived.conf, nginx.conf,
# sh): no blank, quote, brace, `;`, comment mark, `$`, backslash or line end; not starting
# with keepalived's line-start marks `@` (conditional) or `~` (sequence), nor `-` or `.`
# but as `./` (a command in the current directory: ./bootstrap, as the hints name it); and
# far shorter than keepalived's 1024-byte line.
_WORD = re.compile(r"(?:\./)?[A-Za-z0-9/][A-Za-z0-9._~%?=&+,:@/-]{0,254}")
# A node's name as a directory of the rendered tree: one path component, never `..` or `/`.
_DIRECTORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@jinja2.pass_context
def _word(context: jinja2.runtime.Context, value: object) -> str:
    """Every `{{ }}` of every template goes through here (jinja2's finalize): refuse, not trust.

    A value that is not one plain word could close a block, start a comment or add a
    line to a file root runs. The lab model's patterns normally rule that out; a model
    built around validation (model_construct, model_copy) or a gap in a pattern is
    refused here rather than rendered.
    """
    text = str(value) if isinstance(value, (str, IPv4Address)) or type(value) is int else None
    if text is None or not _WORD.fullmatch(text):
        why = f"refusing to render {shown(value)}: allowed: one word of A-Z a-z 0-9 . _ ~ % ? = & + , : @ / -"
        raise SpecError(context.name or "template", [Problem("", why)])
    return text


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("halab", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
    finalize=_word,
)
_ENV.filters["seconds"] = lambda value: f"{value:g}"


@dataclass(frozen=True)
class Instance:
    """One vrrp_instance block as one director sees it.

    started_backup: the file says MASTER, but nopreempt needs BACKUP (the template says why).
    """

    name: str
    vrid: int
    vips: tuple[str, ...]
    state: str
    priority: int
    started_backup: bool = False


def render(lab: Lab) -> dict[str, str]:
    """All files of all nodes, plus lab.json."""
    files: dict[str, str] = {"lab.json": lab_json(lab)}
    for name, node in lab.nodes.items():
        if node.role == "director":
            tree = {
                KEEPALIVED_CONF: keepalived_conf(lab, name),
                DIRECTOR_SYSCTL: director_sysctl(lab),
                NOTIFY_SCRIPT: _ENV.get_template("halab-notify.j2").render(lab=lab),
            }
            if lab.vrrp.lvs_sync_daemon:
                tree[KEEPALIVED_OPTIONS] = keepalived_options()
        elif node.role == "realserver":
            tree = realserver_files(lab, name)
        else:
            continue
        files.update({f"{_directory(name)}/{path}": text for path, text in tree.items()})
    return files


def _directory(name: str) -> str:
    """A node's name as the first part of its files' paths: one plain directory name, or refused."""
    if not _DIRECTORY.fullmatch(name):
        why = f"refusing to use {shown(name)} as a node's directory: allowed: one word of A-Z a-z 0-9 . _ -"
        raise SpecError("render", [Problem("", why)])
    return name


def write(files: dict[str, str], target: Path) -> list[Path]:
    """Write rendered files under target, replacing what was there: scripts executable, files
    holding a secret (keepalived.conf: auth_pass) readable by root alone from their first byte."""
    written = []
    for relative, text in sorted(files.items()):
        path = _inside(target, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = mode_of(relative)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(descriptor, mode)  # an existing file keeps its old mode through O_CREAT
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        written.append(path)
    return written


def place(lab: Lab, imported: Path, target: Path) -> list[Path]:
    """Copy each node's verbatim files (`Node.files`) from the lab's imported/ directory over
    its rendered tree: the operator's keepalived.conf replaces the rendered one byte for byte.
    A file missing, or reaching outside imported/ through a link, is refused."""
    placed = []
    base = imported.resolve()
    for name, node in lab.nodes.items():
        for guest, local in sorted(node.files.items()):
            origin = (imported / local).resolve()
            if not origin.is_relative_to(base) or not origin.is_file():
                why = f"nodes.{name}.files: {shown(local)} is not a file of {imported} (run `invoke lab.import` again)"
                raise SpecError(str(imported), [Problem("", why)])
            relative = f"{_directory(name)}{guest}"
            path = _inside(target, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            executable = guest == "/" + REALSERVER_SCRIPT or origin.stat().st_mode & 0o100
            mode = 0o755 if executable else mode_of(relative)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            os.fchmod(descriptor, mode)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(origin.read_bytes())
            placed.append(path)
    return placed


def mode_of(relative: str) -> int:
    """A rendered file's mode: 0600 for what holds a secret, 0755 for scripts, 0644 otherwise."""
    if relative.endswith(KEEPALIVED_CONF):
        return 0o600
    return 0o755 if relative.endswith((REALSERVER_SCRIPT, NOTIFY_SCRIPT)) else 0o644


def _inside(target: Path, relative: str) -> Path:
    """target/relative, refused when relative would leave target: paths start with a node's name."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        why = f"refusing to write {shown(relative)}: it would land outside {target}"
        raise SpecError(str(target), [Problem("", why)])
    return target / relative


def _launcher() -> list[str]:
    """The words of the command the user runs tasks with, for the files' "edit the lab file"
    hint; [] when one is a word the renderer refuses (`python3 -m invoke`'s -m): the hint then
    names the task alone."""
    words = environment.launcher().split()
    return words if all(_WORD.fullmatch(word) for word in words) else []


def keepalived_conf(lab: Lab, director: str) -> str:
    node = lab.nodes[director]
    peers = [str(lab.nodes[p].address) for p in lab.vrrp.unicast_peers if p != director]
    return _ENV.get_template("keepalived.conf.j2").render(
        lab=lab,
        name=director,
        node=node,
        instances=instances(lab, director),
        unicast_peers=peers,
        smtp_server=smtp_server(lab),
        launcher=_launcher(),
    )


def keepalived_options() -> str:
    """keepalived's command-line options (its systemd unit's EnvironmentFile), for a lab with
    connection sync: keepalived's checker otherwise removes the IPVS virtual servers on a
    clean stop while the VRRP process still holds the VIP, and for that moment the old
    MASTER's own TCP stack answers established connections with RST (seen on the fast lab:
    7 of 8 reset). Left in place, they keep forwarding until the VIP has moved."""
    return "\n".join(
        [
            "# keepalived's options. Rendered by halab for a lab with vrrp.lvs_sync_daemon.",
            "# --dont-release-ipvs: a clean stop leaves the IPVS table to forward established",
            "# connections until the BACKUP (holding their synced entries) has the VIP.",
            'KEEPALIVED_OPTIONS="-D --dont-release-ipvs"',
            "",
        ]
    )


def director_sysctl(lab: Lab) -> str:
    """IPVS settings for a director, applied once ip_vs is loaded (see DIRECTOR_SYSCTLS); a NAT
    director also routes, since the real servers' replies pass through it."""
    lines = [
        "# IPVS on an LVS director. Rendered by halab.",
        "# expire_nodest_conn: a packet for a connection whose real server was removed ends that",
        "# entry and is scheduled afresh, instead of being sent to the dead server for minutes.",
        "# expire_quiescent_template: the same for persistence templates.",
    ]
    settings: dict[str, int] = dict(DIRECTOR_SYSCTLS)
    if lab.method == "NAT":
        lines.append("# LVS-NAT: the real servers' replies are forwarded (and de-NATed) by the MASTER.")
        settings["net.ipv4.ip_forward"] = 1
    return "\n".join(lines + [f"{key} = {value}" for key, value in settings.items()]) + "\n"


def smtp_server(lab: Lab) -> str:
    """The notification server's address: a node named in the lab file stands for its address."""
    server = lab.notification.smtp_server
    return str(lab.nodes[server].address) if server in lab.nodes else server


def vrids(lab: Lab, director: str) -> dict[str, int]:
    """VIP -> the VRID of the director's VRRP instance that carries it."""
    return {str(vip): instance.vrid for instance in instances(lab, director) for vip in instance.vips}


def runs_imported_conf(node: Node) -> bool:
    """Whether the node runs an operator's keepalived.conf verbatim (`lab.import`), not halab's."""
    return f"/{KEEPALIVED_CONF}" in node.files


def instances(lab: Lab, director: str) -> list[Instance]:
    """The VRRP instances of one director.

    active-backup: one instance holding every VIP. active-active (the write-up's dual
    master): a second instance, id + 1, holding the second VIP, where the two directors'
    states and priorities are swapped, so each is MASTER of one VIP.
    With nopreempt (or a preempt delay) every director starts as BACKUP, since keepalived
    ignores both on a MASTER; the highest priority still wins the first election.
    """
    me = _vrrp_settings(lab.nodes[director])
    other = next((_vrrp_settings(n) for name, n in lab.role("director").items() if name != director), me)
    vips = tuple(str(vip) for vip in lab.vips)
    vrid = lab.vrrp.virtual_router_id
    if lab.mode == "active-active":
        result = [
            Instance("VI_1", vrid, vips[:1], *me),
            Instance("VI_2", vrid + 1, vips[1:], *other),
        ]
    else:
        result = [Instance("VI_1", vrid, vips, *me)]
    if not lab.vrrp.preempt or lab.vrrp.preempt_delay:
        result = [Instance(i.name, i.vrid, i.vips, "BACKUP", i.priority, i.state == "MASTER") for i in result]
    return result


def _vrrp_settings(node: Node) -> tuple[str, int]:
    """A director's (state, priority): the rules made both required for directors."""
    if node.state is None or node.priority is None:
        raise ValueError("a director without state or priority passed validation")
    return node.state, node.priority


def realserver_files(lab: Lab, server: str) -> dict[str, str]:
    """nginx.conf, the page that names the server, and the VIP + ARP suppression script."""
    node = lab.nodes[server]
    ports = sorted({s.port for s in lab.virtual_services if server in s.real_servers})
    context = {"lab": lab, "name": server, "node": node, "ports": ports, "launcher": _launcher()}
    return {
        NGINX_CONF: _ENV.get_template("nginx.conf.j2").render(context),
        INDEX_HTML: _ENV.get_template("index.html.j2").render(context),
        REALSERVER_SCRIPT: _ENV.get_template("lvs-realserver.j2").render(context),
    }


def lab_json(lab: Lab) -> str:
    """The lab as data for other languages (the Vagrantfile) and for the tests."""
    data = {
        "name": lab.name,
        "subnet": str(lab.subnet),
        "mode": lab.mode,
        "interface": lab.vrrp.interface,
        "access_address": str(lab.access_address),
        "vips": [str(vip) for vip in lab.vips],
        "nodes": [
            {
                "name": name,
                "address": str(node.address),
                "role": node.role,
                "state": node.state,
                "priority": node.priority,
            }
            for name, node in lab.nodes.items()
        ],
        "method": lab.method,
        "nat": _nat_json(lab),
        "multicast": lab.multicast,
        "box": lab.box,
        "box_fallback": lab.box_fallback,
        "smtp_server": smtp_server(lab),
        "versions": lab.versions.model_dump(),
    }
    return json.dumps(data, indent=2) + "\n"


def _nat_json(lab: Lab) -> dict | None:
    """The NAT network as the Vagrantfile wires it: a second NIC on directors, real servers on it."""
    if lab.nat is None:
        return None
    return {
        "subnet": str(lab.nat.subnet),
        "gateway": str(lab.nat.gateway),
        "interface": lab.nat.interface,
        "access_address": str(lab.nat.access_address),
        "directors": {name: str(address) for name, address in lab.nat.directors.items()},
    }
