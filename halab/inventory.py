"""An Ansible inventory from a lab file, so the same description drives real hosts.

Hosts are grouped by role (directors, realservers, clients); each carries its address as
`ansible_host` and what the rendered configs say about it: a director's state, priority
and VRRP instances (VRID, VIPs, state and priority in each), a real server's VIPs and
weights. What holds for the whole lab (its name, mode, subnet, the versions to build;
with NAT, the NAT network, its interface and the real servers' gateway) is in `all`'s
vars. A NAT lab adds the group `nat_network`, whose children are the groups on that
network (the directors, by their second NIC, and the real servers). Both formats carry
the same values with the same types: in INI, host vars are read as Python literals and
group vars as strings, so every group var here is a string and every list or number
sits on a host line.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable
from typing import Any

import yaml

from halab import environment, render
from halab.rules import GROUPS, NAT_GROUP
from halab.spec import Lab


def lab_vars(lab: Lab) -> dict[str, str]:
    """The vars of the `all` group: what holds for every host, all strings."""
    return {
        "halab_lab": lab.name,
        "halab_mode": lab.mode,
        "halab_subnet": str(lab.subnet),
        "halab_interface": lab.vrrp.interface,
        "halab_arp_suppression": lab.arp_suppression,
        **_nat_vars(lab),
        **{f"halab_{name}_version": version for name, version in lab.versions.model_dump().items()},
    }


def _nat_vars(lab: Lab) -> dict[str, str]:
    """A NAT lab's second network: the subnet, the directors' NIC on it and the gateway the
    real servers route through (a VIP: the MASTER holds it with the others)."""
    if not nat_groups(lab) or lab.nat is None:
        return {}
    nat = lab.nat
    return {
        "halab_nat_subnet": str(nat.subnet),
        "halab_nat_interface": nat.interface,
        "halab_nat_gateway": str(nat.gateway),
    }


def nat_groups(lab: Lab) -> list[str]:
    """The groups on the NAT network, nat_network's children; none unless the lab forwards by NAT."""
    if lab.nat is None or lab.method != "NAT":
        return []
    return [group for group in groups(lab) if group in (GROUPS["director"], GROUPS["realserver"])]


def host_vars(lab: Lab, name: str) -> dict[str, Any]:
    """One host's vars: its address, and its part in VRRP or in the virtual services."""
    node = lab.nodes[name]
    found: dict[str, Any] = {"ansible_host": str(node.address), "halab_role": node.role}
    if node.role == "director":
        if lab.nat is not None and nat_groups(lab):
            found["halab_nat_address"] = str(lab.nat.directors[name])
        found |= {
            "halab_state": node.state,
            "halab_priority": node.priority,
            "halab_advert_int": lab.vrrp.advert_int,
            "halab_vrrp_instances": [
                {"name": i.name, "vrid": i.vrid, "vips": list(i.vips), "state": i.state, "priority": i.priority}
                for i in render.instances(lab, name)
            ],
        }
    if node.role == "realserver":
        served = [s for s in lab.virtual_services if name in s.real_servers]
        found |= {
            "halab_vips": list(dict.fromkeys(str(s.vip) for s in served)),
            "halab_weights": {f"{s.vip}:{s.port}": s.real_servers[name].weight for s in served},
        }
    return found


def groups(lab: Lab) -> dict[str, list[str]]:
    """Group -> its hosts, in file order; a role without nodes has no group."""
    found: dict[str, list[str]] = {}
    for name, node in lab.nodes.items():
        found.setdefault(GROUPS[node.role], []).append(name)
    return found


def as_yaml(lab: Lab) -> str:
    """The YAML inventory: all -> vars, children -> group -> hosts -> host -> vars (and with
    NAT, nat_network -> children -> its groups)."""
    children: dict[str, Any] = {
        group: {"hosts": {name: host_vars(lab, name) for name in hosts}} for group, hosts in groups(lab).items()
    }
    if nat_groups(lab):
        children[NAT_GROUP] = {"children": {group: {} for group in nat_groups(lab)}}
    tree = {"all": {"vars": lab_vars(lab), "children": children}}
    return f"{_header(lab)}\n" + yaml.safe_dump(tree, sort_keys=False, default_flow_style=False)


def _header(lab: Lab) -> str:
    """The inventory's first line: what it is and the task that wrote it, as the user runs tasks."""
    return f"# Ansible inventory of lab {lab.name!r}, from its lab file ({environment.launcher()} lab.inventory)"


def as_ini(lab: Lab) -> str:
    """The INI inventory: one section per group, each host on one line with its vars as
    Python literals, [nat_network:children] with NAT, then [all:vars]."""
    lines = [_header(lab)]
    for group, hosts in groups(lab).items():
        lines += ["", f"[{group}]"]
        for name in hosts:
            pairs = (f"{key}={_literal(value)}" for key, value in host_vars(lab, name).items())
            lines.append(" ".join([name, *pairs]))
    if nat_groups(lab):
        lines += ["", f"[{NAT_GROUP}:children]", *nat_groups(lab)]
    lines += ["", "[all:vars]", *(f"{key}={value}" for key, value in lab_vars(lab).items())]
    return "\n".join(lines) + "\n"


def _literal(value: Any) -> str:
    """A host var as Ansible's INI reader reads it back (shlex, then ast.literal_eval): a bare
    word for text it cannot take for anything else (an address, MASTER), else a Python literal
    in double quotes."""
    if isinstance(value, str) and shlex.quote(value) == value:
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return '"' + repr(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


FORMATS: dict[str, Callable[[Lab], str]] = {"ini": as_ini, "yaml": as_yaml}
