"""halab.inventory: the lab file as an Ansible inventory, read back as Ansible reads it."""

from __future__ import annotations

import ast
import json
import shlex
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from halab import inventory, paths, spec

LABS = [paths.DEFAULT_LAB, paths.LABS / "dual.yaml", paths.LABS / "unicast.yaml", paths.LABS / "nat.yaml"]


def read_yaml(text: str) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """(group -> hosts, host -> vars with `all`'s vars under them), from Ansible's YAML
    inventory structure: all: vars, children: GROUP: hosts: HOST: vars."""
    top = yaml.safe_load(text)["all"]
    groups = {group: list(body["hosts"]) for group, body in top["children"].items() if "hosts" in body}
    for group, body in top["children"].items():  # a group of groups: their hosts
        groups.update({group: [h for child in body["children"] for h in groups[child]]} if "children" in body else {})
    hosts = {h: {**top["vars"], **v} for body in top["children"].values() for h, v in body.get("hosts", {}).items()}
    return groups, hosts


def read_ini(text: str) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """The same, by the INI rules Ansible documents: `[group]` sections of host lines split
    like a shell, their KEY=VALUE read as Python literals (else text); `[group:children]`
    sections of group names; `[all:vars]` KEY=VALUE read as text."""
    groups: dict[str, list[str]] = {}
    host_vars: dict[str, dict[str, Any]] = {}
    common: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "all:vars":
            key, value = line.split("=", 1)
            common[key.strip()] = value.strip()
            continue
        if section.endswith(":children"):
            groups.setdefault(section.removesuffix(":children"), []).extend(groups[line.strip()])
            continue
        host, *pairs = shlex.split(line)
        groups.setdefault(section, []).append(host)
        host_vars[host] = {key: _value(value) for key, value in (pair.split("=", 1) for pair in pairs)}
    return groups, {host: {**common, **found} for host, found in host_vars.items()}


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@pytest.mark.parametrize("lab_file", LABS, ids=lambda p: p.stem)
def test_ini_and_yaml_carry_the_same_groups_hosts_and_typed_vars(lab_file):
    lab = spec.load(lab_file)
    assert read_ini(inventory.as_ini(lab)) == read_yaml(inventory.as_yaml(lab))


def test_the_seed_inventory_groups_by_role_with_vrrp_and_vips():
    groups, hosts = read_yaml(inventory.as_yaml(spec.load()))
    assert groups == {"realservers": ["server1", "server2"], "directors": ["server3", "server4"], "clients": ["client"]}
    assert hosts["server3"]["ansible_host"] == "172.25.1.1"
    assert (hosts["server3"]["halab_state"], hosts["server3"]["halab_priority"]) == ("MASTER", 100)
    assert hosts["server4"]["halab_vrrp_instances"] == [
        {"name": "VI_1", "vrid": 51, "vips": ["172.25.1.100"], "state": "BACKUP", "priority": 50}
    ]
    assert hosts["server1"]["halab_vips"] == ["172.25.1.100"]
    assert hosts["server1"]["halab_weights"] == {"172.25.1.100:80": 1}
    assert hosts["client"]["halab_keepalived_version"] == "2.2.7" and hosts["client"]["halab_lab"] == "seed"


def test_active_active_gives_each_director_both_instances_swapped():
    _, hosts = read_yaml(inventory.as_yaml(spec.load(paths.LABS / "dual.yaml")))
    instances = {
        h: [(i["vrid"], i["vips"], i["state"]) for i in hosts[h]["halab_vrrp_instances"]]
        for h in ("server3", "server4")
    }
    assert instances == {
        "server3": [(51, ["172.25.1.100"], "MASTER"), (52, ["172.25.1.200"], "BACKUP")],
        "server4": [(51, ["172.25.1.100"], "BACKUP"), (52, ["172.25.1.200"], "MASTER")],
    }


def test_a_nat_inventory_has_the_nat_network_its_gateway_and_each_director_s_address_there():
    """Once a NAT lab's inventory said nothing of the network its real servers are on."""
    groups, hosts = read_yaml(inventory.as_yaml(spec.load(paths.LABS / "nat.yaml")))
    assert groups["nat_network"] == ["server1", "server2", "server3", "server4"]
    assert (
        hosts["server1"]["halab_nat_gateway"] == "172.25.2.100" and hosts["server1"]["ansible_host"] == "172.25.2.101"
    )
    assert hosts["server3"]["halab_nat_subnet"] == "172.25.2.0/24" and hosts["server3"]["halab_nat_interface"] == "eth1"
    assert (hosts["server3"]["halab_nat_address"], hosts["server4"]["halab_nat_address"]) == (
        "172.25.2.1",
        "172.25.2.2",
    )
    assert "nat_network" not in read_yaml(inventory.as_yaml(spec.load()))[0]
    assert not any(key.startswith("halab_nat") for key in read_yaml(inventory.as_yaml(spec.load()))[1]["server3"])


@pytest.mark.skipif(
    not shutil.which("ansible-inventory"), reason="ansible-core is not installed (./bootstrap installs it)"
)
@pytest.mark.parametrize("lab_file", [paths.LABS / "dual.yaml", paths.LABS / "nat.yaml"], ids=lambda p: p.stem)
@pytest.mark.parametrize("form", list(inventory.FORMATS))
def test_ansible_reads_it_as_written(tmp_path, form, lab_file):
    lab = spec.load(lab_file)
    path = tmp_path / f"inventory.{form}"
    path.write_text(inventory.FORMATS[form](lab))
    listed = json.loads(
        subprocess.run(
            ["ansible-inventory", "--list", "-i", str(path)], capture_output=True, text=True, check=True, timeout=120
        ).stdout
    )
    groups, hosts = read_yaml(inventory.as_yaml(lab))
    assert listed["_meta"]["hostvars"] == hosts
    roles = {group: hosts for group, hosts in groups.items() if group != "nat_network"}
    assert {group: listed[group]["hosts"] for group in roles} == roles
    if lab.nat:  # the NAT network's group, by its children
        assert listed["nat_network"]["children"] == ["realservers", "directors"]


@pytest.mark.parametrize("form", [inventory.as_ini, inventory.as_yaml])
def test_the_header_names_the_launcher_the_user_runs(monkeypatch, form):
    monkeypatch.setenv("HALAB_LAUNCHER", "./bootstrap")
    assert form(spec.load()).splitlines()[0].endswith("from its lab file (./bootstrap lab.inventory)")
