"""The lab description: the only code that reads a lab file.

YAML goes in, a frozen `Lab` comes out, or a `SpecError` listing every problem in
the file at once, each with the path of the field (`nodes.server3.priority`), the
bad value and what is allowed. Everything downstream (render, providers, tests)
receives the model and never re-reads the file.

A lab file ends up as configs that root runs on every director, so it is read as
hostile input: bounded in size, encoding, nesting and YAML features before any value
is looked at (`_read`), and every free-text field is held to a character set and a
length that keepalived, nginx and sh each read as one plain word, so no value can
close a block, start a comment or add a line.

Validation happens in two passes because the second needs the first: pydantic
checks shapes, types, ranges and unknown keys field by field (all fields, all at
once); when the shapes are sound, `rules.problems()` checks what relates fields to
each other (addresses in the subnet, one MASTER, peers that are directors...).
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from halab import environment, paths, rules
from halab.errors import Problem, SpecError, UsageError

# The seed lab is 2 KiB; 256 KiB leaves room for any real lab and bounds what a hostile
# file can make the parser and the validator hold.
MAX_FILE_BYTES = 256 * 1024
# A lab file nests 6 levels (lab, virtual_services, a service, real_servers, a server, weight).
MAX_DEPTH = 10
# A file with hundreds of mistakes is not being written by a person; the first ones say enough.
MAX_PROBLEMS = 100


# --- showing values in errors ---------------------------------------------------------

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


def shown(value: Any) -> str:
    """A value as an error shows it: cut short, with its length, so a 1 MB value makes a short error."""
    text = _REPR.repr(value)
    if isinstance(value, str) and len(value) > _REPR.maxstring:
        return f"{text} ({len(value)} characters)"
    if isinstance(value, (list, tuple, dict)) and len(value) > _REPR.maxlist:
        return f"{text} ({len(value)} items)"
    return text


def _refusal(why: str) -> PydanticCustomError:
    """A field error whose message says what is allowed; `_problem` puts the path and value in front."""
    return PydanticCustomError("lab_value", "{why}", {"why": why})


# --- field types ----------------------------------------------------------------------


def _matching(pattern: str, should: str) -> Callable[[str], str]:
    """A check that a string matches `pattern` whole; `should` tells the author what is allowed.

    The patterns are the safety of the rendered files: each admits only characters that
    keepalived, nginx and sh all read as part of one plain word (no blank, quote, brace,
    comment mark `!`/`#`, `$`, backslash or line end) and a length far below keepalived's
    1024-byte line.
    """
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _refusal(should)
        return value

    return check


def _digits_as_text(value: Any) -> Any:
    """Accept `auth_pass: 1111` unquoted, as the write-up writes it; YAML reads it as a number."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_DOTTED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_SLASHED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}/[0-9]{1,2}")
_NAME = paths.NAME.pattern  # lab and node names: what paths are built from


def _address(value: Any) -> IPv4Address:
    """An IPv4 address written a.b.c.d; `address: 2887319809` is a YAML number, not an address."""
    if isinstance(value, IPv4Address):
        return value
    if isinstance(value, str) and _DOTTED.fullmatch(value):
        try:
            return IPv4Address(value)
        except ValueError:
            pass
    raise _refusal("should be an IPv4 address written a.b.c.d, each part 0..255")


# A lab's networks are private (RFC 1918): a public range would shadow real hosts for the
# nodes, and on the Vagrant provider for the host that routes to the lab's libvirt network.
PRIVATE_NETWORKS = (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16"))
# The hypervisors' own networks inside every VM: a lab network overlapping one would give a
# VM two routes to it (and vagrant-libvirt refuses a network that overlaps its management one).
MANAGEMENT_NETWORKS = {
    IPv4Network("192.168.121.0/24"): "vagrant-libvirt's management network",
    IPv4Network("10.0.2.0/24"): "VirtualBox's NAT network",
}


def _subnet(value: Any) -> IPv4Network:
    """One of the lab's L2 segments: a.b.c.d/prefix, private and clear of the hypervisors' own
    networks (PRIVATE_NETWORKS, MANAGEMENT_NETWORKS), with room for the switch and nodes.

    /31 and /32 have no usable address left once the switch takes the last one (and the
    code that finds that address would fail), so the longest prefix is /30.
    """
    if isinstance(value, IPv4Network):
        network = value
    elif isinstance(value, str) and _SLASHED.fullmatch(value):
        try:
            network = IPv4Network(value)
        except ValueError as exc:
            raise _refusal(f"should be a network a.b.c.d/prefix with no host bits set ({exc})") from None
    else:
        raise _refusal("should be an IPv4 network written a.b.c.d/prefix, e.g. 172.25.1.0/24")
    if network.prefixlen > 30:
        raise _refusal("should have a prefix of /30 or shorter: nodes and the lab switch need usable addresses")
    if not any(network.subnet_of(private) for private in PRIVATE_NETWORKS):
        ranges = ", ".join(map(str, PRIVATE_NETWORKS))
        raise _refusal(f"should lie inside a private range (RFC 1918): {ranges}")
    for management, whose in MANAGEMENT_NETWORKS.items():
        if network.overlaps(management):
            raise _refusal(f"overlaps {management}, {whose}; allowed: any other private range")
    return network


def _smtp_server(value: Any) -> str:
    """A node's name (rules check it is one) or a unicast IPv4 address keepalived can connect to.

    keepalived would resolve any other word through DNS when it starts, and reads
    `999.1.1.1` as a host name: neither is something a lab file can promise.
    """
    should = "should be the name of a node of this lab (or localhost) or an IPv4 address a.b.c.d"
    if isinstance(value, str) and re.fullmatch(_NAME, value):
        return value
    try:
        address = _address(value)
    except PydanticCustomError:
        raise _refusal(should) from None
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        raise _refusal(f"{should}; {address} is not a unicast address")
    return str(address)


Name = Annotated[
    StrictStr, AfterValidator(_matching(_NAME, "should be a lowercase letter, then up to 14 of a-z 0-9 -"))
]
RouterId = Annotated[
    StrictStr,
    AfterValidator(
        _matching(
            r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            "should be one word: a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -",
        )
    ),
]
Email = Annotated[
    StrictStr,
    Field(max_length=254),
    AfterValidator(
        _matching(
            r"[A-Za-z0-9][A-Za-z0-9_+-]{0,63}(?:\.[A-Za-z0-9_+-]{1,64})*"
            r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
            "should be an e-mail address local@domain: the local part a letter or digit, then "
            "A-Z a-z 0-9 _ + - and dots, the domain of letters, digits, - and dots; at most 254 characters",
        )
    ),
]
UrlPath = Annotated[
    StrictStr,
    AfterValidator(
        _matching(
            r"/[A-Za-z0-9._~/%?=&+,:@-]{0,254}",
            "should be a URL path: / then up to 254 of A-Z a-z 0-9 . _ ~ / % ? = & + , : @ -",
        )
    ),
]
# The config test's veth peers: `halab-peer<N>`, one beside each interface a lab names, in the
# test's own namespace (halab.configtest).
CONFIG_TEST_PEER = "halab-peer"
# Interface names that something a lab runs on already gives a device of its own: a lab NIC
# named so cannot be made, or takes the name from the device that needs it.
RESERVED_INTERFACES = {
    re.compile(rf"{CONFIG_TEST_PEER}[0-9]+"): f"{CONFIG_TEST_PEER}<N> is the config test's own veth peers' form "
    "(one beside each interface the lab names: keepalived -t could not run)",
    re.compile(r"vec[0-9]+"): "vec<N> is what user-mode Linux calls a local guest's NICs until boot names them "
    "vrrp.interface, then nat.interface (naming the first vec1 fails: the second still is)",
    re.compile(r"tunl0"): "tunl0 is the kernel's IP-in-IP device, where a TUN lab's real servers hold the VIPs "
    "(it appears when ipip loads, which fails if a NIC has the name)",
}


def _unreserved(value: str) -> str:
    """An interface name no part of the lab's life already uses (RESERVED_INTERFACES)."""
    for form, why in RESERVED_INTERFACES.items():
        if form.fullmatch(value):
            raise _refusal(f"{why}; allowed: any other interface name")
    return value


Interface = Annotated[
    StrictStr,
    AfterValidator(
        _matching(
            r"(?!(?:lo|all|default)\Z)[A-Za-z][A-Za-z0-9_.-]{0,14}",
            "should be a network interface name: a letter, then up to 14 of A-Z a-z 0-9 _ . - (not lo, all or default)",
        )
    ),
    AfterValidator(_unreserved),
]
BoxName = Annotated[
    StrictStr,
    AfterValidator(
        _matching(
            r"(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
            "should be a Vagrant box name [owner/]name: each part a letter or digit, "
            "then up to 63 of A-Z a-z 0-9 _ . -",
        )
    ),
]
Version = Annotated[
    StrictStr, AfterValidator(_matching(environment.VERSION.pattern, f"should be {environment.VERSION_RULE}"))
]
# keepalived keeps these timeouts in microseconds in 32 bits: at most 4294 s.
MicrosecondTimeout = Annotated[StrictInt, Field(ge=1, le=4294)]
# keepalived takes far longer intervals; a health check or ARP refresh less often than daily is none.
UpToADay = Annotated[StrictInt, Field(ge=1, le=86400)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Address = Annotated[IPv4Address, BeforeValidator(_address)]
Role = Literal["director", "realserver", "client"]
State = Literal["MASTER", "BACKUP"]
# The schedulers and forwarding methods keepalived 2.x accepts (keepalived.conf(5)).
LbAlgo = Literal["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq"]
LbKind = Literal["DR", "NAT", "TUN"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Where a node may run a file verbatim (`Node.files`): keepalived's directory on a director,
# the real-server setup script and nginx's conf and html on a real server. Each part a plain
# name (never `..`, never hidden), at most 4 deep: the path lands under the node's rendered tree.
FILE_PLACES = {
    "director": ("/etc/keepalived/",),
    "realserver": ("/usr/local/sbin/lvs-realserver", "/usr/local/nginx/conf/", "/usr/local/nginx/html/"),
}
_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}"
GuestPath = Annotated[
    StrictStr,
    AfterValidator(
        _matching(
            rf"/(?:etc/keepalived|usr/local/sbin|usr/local/nginx/conf|usr/local/nginx/html)(?:/{_PART}){{1,4}}",
            "should be a file under /etc/keepalived/, /usr/local/nginx/conf/ or /usr/local/nginx/html/, or "
            "/usr/local/sbin/lvs-realserver; each part a letter, digit or _, then up to 63 of A-Z a-z 0-9 . _ -",
        )
    ),
]
# A file of the lab's own import directory (<home>/labs/<name>/imported/), relative to it.
ImportedFile = Annotated[
    StrictStr,
    AfterValidator(
        _matching(
            rf"{_PART}(?:/{_PART}){{0,5}}",
            "should be a path relative to the lab's imported/ directory: parts of a letter, digit or _, "
            "then up to 63 of A-Z a-z 0-9 . _ - (no .., no leading /)",
        )
    ),
]


class Node(_Model):
    """One machine of the lab. Directors also carry their VRRP state and priority.

    files: guest path -> a file of the lab's imported/ directory, placed verbatim over what
    halab renders there (`invoke lab.import` writes them: the operator's keepalived.conf runs as is).
    """

    address: Address
    role: Role
    state: State | None = None
    priority: Annotated[StrictInt, Field(ge=1, le=254)] | None = None
    files: dict[GuestPath, ImportedFile] = {}


# keepalived 2.2.7's checker defaults where a lab file leaves them unset (check_api.c,
# check_http.c; keepalived.conf(5)): one retry, after 1 s, or 3 s for HTTP_GET. A lab test
# reads them back from keepalived's own dump of its running configuration.
CHECK_RETRY = 1
CHECK_DELAY_BEFORE_RETRY = {"TCP_CHECK": 1, "HTTP_GET": 3}


class HealthCheck(_Model):
    """keepalived's check of each real server; delay_loop is the interval between checks.
    A failed check is retried `retry` times, `delay_before_retry` seconds apart, before
    IPVS drops the server (unset: keepalived's defaults, per type)."""

    type: Literal["TCP_CHECK", "HTTP_GET"] = "TCP_CHECK"
    port: Port = 80
    connect_timeout: MicrosecondTimeout = 3
    delay_loop: UpToADay = 3
    retry: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    delay_before_retry: UpToADay | None = None
    path: UrlPath = "/"
    status_code: Annotated[StrictInt, Field(ge=100, le=599)] = 200

    @property
    def retries(self) -> int:
        """The retries keepalived makes: the lab file's, else its default."""
        return CHECK_RETRY if self.retry is None else self.retry

    @property
    def retry_delay(self) -> int:
        """Seconds between a failed check and its retry: the lab file's, else keepalived's per type."""
        return CHECK_DELAY_BEFORE_RETRY[self.type] if self.delay_before_retry is None else self.delay_before_retry


class RealServer(_Model):
    weight: Annotated[StrictInt, Field(ge=0, le=65535)] = 1


class VirtualService(_Model):
    vip: Address
    port: Port = 80
    protocol: Literal["TCP", "UDP"] = "TCP"
    lb_algo: LbAlgo = "rr"
    lb_kind: LbKind = "DR"
    # IPVS's longest persistence: 31 days.
    persistence_timeout: Annotated[StrictInt, Field(ge=1, le=2678400)] | None = None
    health_check: HealthCheck = HealthCheck()
    real_servers: dict[Name, RealServer]


class Authentication(_Model):
    auth_type: Literal["PASS", "AH"] = "PASS"
    # VRRP's PASS authentication carries at most 8 octets; keepalived truncates longer ones.
    auth_pass: Annotated[
        StrictStr,
        Field(min_length=1, max_length=8),
        BeforeValidator(_digits_as_text),
        AfterValidator(
            _matching(
                r"[A-Za-z0-9][A-Za-z0-9._~%?=&+,:@/-]{0,7}",
                "should be a letter or digit, then up to 7 of A-Z a-z 0-9 . _ ~ % ? = & + , : @ / - "
                "(VRRP carries 8 bytes; keepalived reads one word and stops at # or !)",
            )
        ),
    ] = "1111"


class Vrrp(_Model):
    virtual_router_id: Annotated[StrictInt, Field(ge=1, le=255)] = 51
    # Seconds: whole ones for VRRPv2 (an 8-bit field), centiseconds up to 40.95 for VRRPv3 (rules).
    advert_int: Annotated[StrictFloat, Field(gt=0, le=255, allow_inf_nan=False)] = 1
    version: Literal[2, 3] = 2
    interface: Interface = "eth0"
    authentication: Authentication | None = Authentication()
    preempt: StrictBool = True
    # Seconds after its start (or after seeing a lower priority MASTER) before a returning
    # director of higher priority takes the VIP back; 0: at once. keepalived needs every
    # director to start as BACKUP for it, as for nopreempt (render does so).
    preempt_delay: Annotated[StrictInt, Field(ge=0, le=1000)] = 0
    # Empty: multicast adverts to 224.0.0.18. Names of directors: unicast between them.
    unicast_peers: tuple[Name, ...] = ()
    # Seconds between gratuitous ARPs while MASTER; null (the write-up): only on becoming MASTER.
    # After a partition heals, the MASTER that stayed MASTER sends none, and clients keep the
    # other director's MAC until their ARP entry ages out (tens of seconds).
    garp_master_refresh: UpToADay | None = None
    # true: the directors run IPVS's connection sync daemon (multicast on vrrp.interface), so
    # the BACKUP holds the MASTER's connection table and established connections survive a
    # takeover; false (the write-up): the new MASTER has no entry and answers them with RST.
    lvs_sync_daemon: StrictBool = False


class Notification(_Model):
    """keepalived's e-mail on state changes; smtp_server is an address or a node of the lab."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    to: tuple[Email, ...] = ("root@localhost",)
    from_: Email = Field("keepalived@localhost", alias="from")
    smtp_server: Annotated[StrictStr, BeforeValidator(_smtp_server)] = "127.0.0.1"
    smtp_connect_timeout: MicrosecondTimeout = 30


class Versions(_Model):
    keepalived: Version = "2.2.7"
    nginx: Version = "1.17.8"


class Nat(_Model):
    """LVS-NAT's second network: the real servers' own subnet behind the directors.

    Two-armed NAT, as LVS deployments run it: clients reach the VIP on the lab subnet, real
    servers live on this one and send every reply through `gateway`, an address the
    directors hold by VRRP together with the VIPs, so replies always pass the MASTER, where
    IPVS rewrites their source back to the VIP. Each director needs an address here too.
    """

    subnet: Annotated[IPv4Network, BeforeValidator(_subnet)]
    gateway: Address
    interface: Interface = "eth1"
    directors: dict[Name, Address]

    @property
    def access_address(self) -> IPv4Address:
        """The NAT network's switch address, its last usable one: kept free of nodes (rules) so
        the local lab's host side can sit there, as on the lab subnet (`Lab.access_address`)."""
        return self.subnet[-2]


class Lab(_Model):
    """The whole lab; defaults are the seed write-up's where it has one."""

    name: Name
    subnet: Annotated[IPv4Network, BeforeValidator(_subnet)]
    mode: Literal["active-backup", "active-active"] = "active-backup"
    router_id: RouterId = "LVS_DEVEL"
    nodes: dict[Name, Node]
    virtual_services: tuple[VirtualService, ...]
    vrrp: Vrrp = Vrrp()
    # Only with lb_kind NAT: the real servers' network and its VRRP-held gateway.
    nat: Nat | None = None
    notification: Notification = Notification()
    arp_suppression: Literal["arptables", "sysctl"] = "arptables"
    # false: the lab switch drops multicast, as most clouds do; VRRP then needs unicast_peers.
    multicast: StrictBool = True
    versions: Versions = Versions()
    # Vagrant: the box `invoke image.build` makes; when absent, the public box, compiling at `vagrant up`.
    box: BoxName = "halab/rocky-9"
    box_fallback: BoxName = "rockylinux/9"

    def known(self, name: str) -> str:
        """name, if the lab has such a node; UsageError naming the known ones otherwise."""
        if name not in self.nodes:
            raise UsageError(f"lab {self.name!r} has no node {name!r}; nodes: {', '.join(self.nodes)}")
        return name

    def role(self, role: Role) -> dict[str, Node]:
        """The nodes of one role, in file order."""
        return {name: node for name, node in self.nodes.items() if node.role == role}

    @property
    def client(self) -> str:
        """The node that sends the requests (probes, checks, benchmarks): the first client in file
        order. A lab file may have none (rules do not ask for one); what needs one says so."""
        clients = self.role("client")
        if not clients:
            raise UsageError(f"lab {self.name!r} has no node with role client; this needs one to send requests")
        return next(iter(clients))

    @property
    def access_address(self) -> IPv4Address:
        """The lab switch's own address, the subnet's last usable one: where the host reaches the
        nodes (ssh) on the local lab. Rules keep it free of nodes and VIPs."""
        return self.subnet[-2]

    @property
    def vips(self) -> tuple[IPv4Address, ...]:
        """Distinct VIPs in file order; in active-active the first belongs to VRRP instance 1."""
        return tuple(dict.fromkeys(service.vip for service in self.virtual_services))

    @property
    def method(self) -> str:
        """The lab's one forwarding method (rules make every service use the same)."""
        return self.virtual_services[0].lb_kind if self.virtual_services else "DR"

    def masters(self) -> dict[str, str]:
        """VIP -> the director that holds it when all is well: the highest priority (in
        active-active, the first VIP's; the other director holds the rest)."""
        directors = sorted(self.role("director").items(), key=lambda item: -(item[1].priority or 0))
        first, second = directors[0][0], directors[-1][0]
        vips = [str(v) for v in self.vips]
        if self.mode == "active-active":
            return {vips[0]: first, **{vip: second for vip in vips[1:]}}
        return {vip: first for vip in vips}


# --- reading the file -----------------------------------------------------------------

# Plain data only: mappings, lists, strings, numbers, booleans, null. Timestamps stay
# strings, `<<` is an ordinary key, and sets, ordered maps and binary are refused.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{kind}" for kind in ("null", "bool", "int", "float", "str", "seq", "map")}
_KEY_TAGS = _PLAIN_TAGS - {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
# What YAML itself refuses (its Reader's rule), found first so the error names the byte offset.
_UNPRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Unreadable(Exception):
    """A file refused as a whole (size, encoding, YAML); `parse` makes it a SpecError of its source."""


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a lab file may not use (aliases, deep nesting, tags); reported with its position."""


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """Any tag but plain data's: `!!set` would make a list unordered, `!!binary` bytes, others worse."""
    raise _Refused(
        None,
        None,
        f"the tag {node.tag} is not allowed in a lab file; "
        "allowed: mappings, lists, strings, numbers, booleans and null",
        node.start_mark,
    )


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """YAML integers, but not Python's ValueError on a number of thousands of digits."""
    if len(node.value) > 40:
        raise _Refused(
            None, None, f"a number of {len(node.value)} characters is not allowed (at most 40)", node.start_mark
        )
    return yaml.SafeLoader.construct_yaml_int(loader, node)


class _LabLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded for hostile files.

    Aliases are refused outright (a 3 KB "billion laughs" file expands to gigabytes, and a
    lab file never needs one), nesting deeper than MAX_DEPTH is refused before the
    recursive composer could overflow, keys must be plain scalars (a list as a key is
    unhashable), and two equal keys are an error (PyYAML silently keeps the last: a lab
    with two `server1:` must fail).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        """YAML's implicit types, except that a date or `<<` stays text: a lab file has neither."""
        tag = super().resolve(kind, value, implicit)
        return tag if tag in _PLAIN_TAGS else self.DEFAULT_SCALAR_TAG

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Each node of the document, refused at an anchor, an alias or too deep (see the class)."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                None,
                None,
                "anchors and aliases (&name, *name) are not allowed in a lab file; write the value out",
                event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise _Refused(None, None, f"nested deeper than {MAX_DEPTH} levels; a lab file needs 6", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """A mapping whose keys are plain scalars, each once (see the class)."""
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _KEY_TAGS:
                raise _Refused(
                    None,
                    None,
                    "a mapping key must be a plain name, not a list, mapping or tagged value",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {shown(key)} (first defined at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


# Plain data only: every other tag PyYAML knows (and any unknown one) is refused.
for _tag in [*yaml.SafeLoader.yaml_constructors, None]:
    if _tag not in _PLAIN_TAGS:
        _LabLoader.add_constructor(_tag, _refuse_tag)
_LabLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _decode(data: bytes) -> str:
    """UTF-8 text; anything else is refused naming the first undecodable byte's offset."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _Unreadable("the lab file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Unreadable(
            f"the lab file is not UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} "
            f"(line {line}) cannot be decoded; save it as UTF-8"
        ) from None


def _check_printable(text: str) -> None:
    """NUL and other control characters have no place in a lab file (and YAML refuses them anyway)."""
    found = _UNPRINTABLE.search(text)
    if found:
        offset = len(text[: found.start()].encode("utf-8", "surrogatepass"))
        line = text.count("\n", 0, found.start()) + 1
        what = "a NUL byte" if found.group() == "\0" else f"control character U+{ord(found.group()):04X}"
        raise _Unreadable(
            f"the lab file holds {what} at byte offset {offset} (line {line}); a lab file is printable text"
        )


def _read(data: bytes) -> Any:
    """Bytes to plain data: bounded size, UTF-8, printable, then the bounded YAML loader."""
    if len(data) > MAX_FILE_BYTES:
        raise _Unreadable(f"the lab file is larger than {MAX_FILE_BYTES} bytes (256 KiB), the most a lab file may be")
    text = _decode(data)
    _check_printable(text)
    try:
        return yaml.load(text, Loader=_LabLoader)  # a SafeLoader subclass
    except _Refused as exc:
        raise _Unreadable(f"refused {_where(exc.problem_mark)}: {_cut(exc.problem)}") from None
    except yaml.MarkedYAMLError as exc:
        raise _Unreadable(f"not valid YAML {_where(exc.problem_mark)}: {_cut(exc.problem)}") from None
    except yaml.YAMLError as exc:
        raise _Unreadable(f"not valid YAML: {_cut(str(exc))}") from None


def _where(mark: yaml.Mark | None) -> str:
    """A parser's position as a person counts it (from 1)."""
    return f"at line {mark.line + 1}, column {mark.column + 1}" if mark else "at an unknown position"


def _cut(text: str | None, limit: int = 200) -> str:
    """A parser's message, at most `limit` characters: some quote the text they stopped at."""
    text = text or "unknown problem"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def load(path: Path | str | None = None) -> Lab:
    """Read and validate a lab file; with no path, the seed write-up's lab."""
    source = Path(path) if path else paths.DEFAULT_LAB
    try:
        with source.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(str(source), [Problem("", f"cannot read the lab file: {exc.strerror}")]) from None
    return parse(data, str(source))


def parse(text: str | bytes, source: str = "<lab>") -> Lab:
    """Validate lab YAML (text, or the file's bytes); raise SpecError with every problem found."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        content = _read(data)
    except _Unreadable as exc:
        raise SpecError(source, [Problem("", str(exc))]) from None
    if not isinstance(content, dict):
        found = "an empty file" if content is None else f"a YAML {type(content).__name__}"
        raise SpecError(source, [Problem("", f"a lab file is a YAML mapping (see labs/seed.yaml), got {found}")])
    _apply_version_overrides(content)
    try:
        lab = Lab.model_validate(content)
    except ValidationError as exc:
        errors = exc.errors()
        raise SpecError(
            source,
            _at_most([_problem(error) for error in errors[:MAX_PROBLEMS]], len(errors)),
            SECOND_PASS,
        ) from None
    problems = rules.problems(lab)
    if problems:
        raise SpecError(source, _at_most(problems[:MAX_PROBLEMS], len(problems)))
    return lab


# Validation has two passes: each field on its own (types, ranges, words), then the rules
# across fields (halab.rules), which need a whole model. Say so, so that fixing the first
# list and meeting a second one is no surprise.
SECOND_PASS = (
    "(two passes: these are the fields on their own; the rules across fields, such as one MASTER "
    "or peers that are directors, are checked once these are fixed)"
)


def _at_most(first: list[Problem], total: int) -> list[Problem]:
    """The first MAX_PROBLEMS problems, and how many more there were (only those shown are formatted)."""
    more = [Problem("", f"... and {total - len(first)} more problem(s) not shown")] if total > len(first) else []
    return first + more


def version_overrides() -> dict[str, str]:
    """HALAB_KEEPALIVED_VERSION / HALAB_NGINX_VERSION: this machine's choice over the lab file's.

    For hosts that cannot fetch the lab's version (nginx 1.17.x exists only upstream);
    the override is checked where it is read (halab.environment), then like the file's own
    value (pinned, with a sum).
    """
    return {name: environment.version(name) for name in Versions.model_fields if environment.version(name)}


def _apply_version_overrides(data: dict) -> None:
    overrides = version_overrides()
    if overrides and isinstance(data.setdefault("versions", {}), dict):
        data["versions"].update(overrides)


def _problem(error: Any) -> Problem:
    """Turn one pydantic error into a Problem naming the field, the value and what is allowed."""
    loc = tuple(error["loc"])
    # A key is the file's text: a newline or control character in it would break the message.
    path = ".".join(_cut(str(part).encode("unicode_escape").decode(), 40) for part in loc)
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(_fields_at(loc[:-1])))
        return Problem(path, f"unknown key; allowed here: {allowed}")
    if error["type"] == "missing":
        return Problem(path, "required, but missing")
    return Problem(path, f"{shown(error.get('input'))} is not allowed: {error['msg']}")


def _fields_at(loc: tuple) -> list[str]:
    """The keys a mapping at `loc` may have, by walking the model classes down the path."""
    model: Any = Lab
    index = 0
    while index < len(loc):
        field = model.model_fields[loc[index]]
        model, steps = _inner_model(field.annotation)
        index += 1 + steps
    return [field.alias or name for name, field in model.model_fields.items()]


def _inner_model(annotation: Any) -> tuple[type[BaseModel], int]:
    """The model class behind a field, and how many path steps (a dict key, an index) lead to it."""
    origin = get_origin(annotation)
    if origin is None:
        return annotation, 0
    steps = 1 if origin in (dict, tuple) else 0
    model = next(arg for arg in get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel))
    return model, steps
