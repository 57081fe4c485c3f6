"""The lab description: the only code that reads a lab file.

YAML goes in, a frozen `Lab` comes out, or a `SpecError` listing every problem in
the file at once, each with the path of the field (`nodes.server3.priority`), the
bad value and what is allowed. Everything downstream (render, providers, tests)
receives the model and never re-reads the file.

Validation happens in two passes because the second needs the first: pydantic
checks shapes, types, ranges and unknown keys field by field (all fields, all at
once); when the shapes are sound, `rules.problems()` checks what relates fields to
each other (addresses in the subnet, one MASTER, peers that are directors...).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from halab import paths, pins, rules
from halab.errors import Problem, SpecError

Name = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9-]{0,14}$")]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Seconds = Annotated[StrictInt, Field(ge=1)]
Address = Annotated[IPv4Address, Field(strict=False)]
Role = Literal["director", "realserver", "client"]
State = Literal["MASTER", "BACKUP"]
# The schedulers and forwarding methods keepalived 2.x accepts (keepalived.conf(5)).
LbAlgo = Literal["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq"]
LbKind = Literal["DR", "NAT", "TUN"]


def _digits_as_text(value: Any) -> Any:
    """Accept `auth_pass: 1111` unquoted, as the write-up writes it; YAML reads it as a number."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Node(_Model):
    """One machine of the lab. Directors also carry their VRRP state and priority."""

    address: Address
    role: Role
    state: State | None = None
    priority: Annotated[StrictInt, Field(ge=1, le=254)] | None = None


class HealthCheck(_Model):
    """keepalived's check of each real server; delay_loop is the interval between checks."""

    type: Literal["TCP_CHECK", "HTTP_GET"] = "TCP_CHECK"
    port: Port = 80
    connect_timeout: Seconds = 3
    delay_loop: Seconds = 3
    path: Annotated[StrictStr, Field(pattern=r"^/")] = "/"
    status_code: Annotated[StrictInt, Field(ge=100, le=599)] = 200


class RealServer(_Model):
    weight: Annotated[StrictInt, Field(ge=0, le=65535)] = 1


class VirtualService(_Model):
    vip: Address
    port: Port = 80
    protocol: Literal["TCP", "UDP"] = "TCP"
    lb_algo: LbAlgo = "rr"
    lb_kind: LbKind = "DR"
    persistence_timeout: Seconds | None = None
    health_check: HealthCheck = HealthCheck()
    real_servers: dict[Name, RealServer]


class Authentication(_Model):
    auth_type: Literal["PASS", "AH"] = "PASS"
    # VRRP's PASS authentication carries at most 8 octets; keepalived truncates longer ones.
    auth_pass: Annotated[StrictStr, Field(min_length=1, max_length=8), BeforeValidator(_digits_as_text)] = "1111"


class Vrrp(_Model):
    virtual_router_id: Annotated[StrictInt, Field(ge=1, le=255)] = 51
    advert_int: Annotated[float, Field(gt=0, le=255)] = 1
    version: Literal[2, 3] = 2
    interface: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]{1,15}$")] = "eth0"
    authentication: Authentication | None = Authentication()
    preempt: StrictBool = True
    # Empty: multicast adverts to 224.0.0.18. Names of directors: unicast between them.
    unicast_peers: tuple[Name, ...] = ()
    # Seconds between gratuitous ARPs while MASTER; null (the write-up): only on becoming MASTER.
    # After a partition heals, the MASTER that stayed MASTER sends none, and clients keep the
    # other director's MAC until their ARP entry ages out (tens of seconds).
    garp_master_refresh: Seconds | None = None


class Notification(_Model):
    """keepalived's e-mail on state changes; smtp_server is an address or a node of the lab."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    to: tuple[StrictStr, ...] = ("root@localhost",)
    from_: StrictStr = Field("keepalived@localhost", alias="from")
    smtp_server: StrictStr = "127.0.0.1"
    smtp_connect_timeout: Seconds = 30


class Versions(_Model):
    keepalived: StrictStr = "2.2.7"
    nginx: StrictStr = "1.17.8"


class Lab(_Model):
    """The whole lab; defaults are the seed write-up's where it has one."""

    name: Name
    subnet: Annotated[IPv4Network, Field(strict=False)]
    mode: Literal["active-backup", "active-active"] = "active-backup"
    router_id: StrictStr = "LVS_DEVEL"
    nodes: dict[Name, Node]
    virtual_services: tuple[VirtualService, ...]
    vrrp: Vrrp = Vrrp()
    notification: Notification = Notification()
    arp_suppression: Literal["arptables", "sysctl"] = "arptables"
    # false: the lab switch drops multicast, as most clouds do; VRRP then needs unicast_peers.
    multicast: StrictBool = True
    versions: Versions = Versions()
    # Vagrant: the box `invoke image.build` makes; when absent, the public box, compiling at `vagrant up`.
    box: StrictStr = "halab/rocky-9"
    box_fallback: StrictStr = "rockylinux/9"

    def role(self, role: Role) -> dict[str, Node]:
        """The nodes of one role, in file order."""
        return {name: node for name, node in self.nodes.items() if node.role == role}

    @property
    def vips(self) -> tuple[IPv4Address, ...]:
        """Distinct VIPs in file order; in active-active the first belongs to VRRP instance 1."""
        return tuple(dict.fromkeys(service.vip for service in self.virtual_services))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a lab with two `server1:` must fail."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                first = seen[key]
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first defined at line {first.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def load(path: Path | str | None = None) -> Lab:
    """Read and validate a lab file; with no path, the seed write-up's lab."""
    source = Path(path) if path else paths.DEFAULT_LAB
    try:
        text = source.read_text()
    except OSError as exc:
        raise SpecError(str(source), [Problem("", f"cannot read the lab file: {exc.strerror}")]) from None
    return parse(text, str(source))


def parse(text: str, source: str = "<lab>") -> Lab:
    """Validate lab YAML text; raise SpecError with every problem found."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(source, [Problem("", f"not valid YAML at {where}: {exc.problem}")]) from None
    if not isinstance(data, dict):
        raise SpecError(source, [Problem("", f"a lab file is a YAML mapping, got {type(data).__name__}")])
    _apply_version_overrides(data)
    try:
        lab = Lab.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, [_problem(error) for error in exc.errors()]) from None
    problems = rules.problems(lab)
    if problems:
        raise SpecError(source, problems)
    return lab


def version_overrides() -> dict[str, str]:
    """HALAB_KEEPALIVED_VERSION / HALAB_NGINX_VERSION: this machine's choice over the lab file's.

    For hosts that cannot fetch the lab's version (nginx 1.17.x exists only upstream);
    the override is validated like the file's own value.
    """
    return {name: os.environ[pins.version_variable(name)] for name in Versions.model_fields
            if os.environ.get(pins.version_variable(name))}


def _apply_version_overrides(data: dict) -> None:
    overrides = version_overrides()
    if overrides and isinstance(data.setdefault("versions", {}), dict):
        data["versions"].update(overrides)


def _problem(error: Any) -> Problem:
    """Turn one pydantic error into a Problem naming the field, the value and what is allowed."""
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(_fields_at(loc[:-1])))
        return Problem(path, f"unknown key; allowed here: {allowed}")
    if error["type"] == "missing":
        return Problem(path, "required, but missing")
    value = error.get("input")
    return Problem(path, f"{value!r} is not allowed: {error['msg']}")


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
