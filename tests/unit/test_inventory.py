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

LABS = [paths.DEFAULT_LAB, paths.LABS / "dual.yaml", paths.LABS / "unicast.yaml"]


def read_yaml(text: str) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """(group -> hosts, host -> vars with `all`'s vars under them), from Ansible's YAML
    inventory structure: all: vars, children: GROUP: hosts: HOST: vars."""
    top = yaml.safe_load(text)["all"]
    groups = {group: list(body["hosts"]) for group, body in top["children"].items()}
    hosts = {h: {**top["vars"], **v} for body in top["children"].values() for h, v in body["hosts"].items()}
    return groups, hosts


def read_ini(text: str) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """The same, by the INI rules Ansible documents: `[group]` sections of host lines split
    like a shell, their KEY=VALUE read as Python literals (else text); `[all:vars]` KEY=VALUE
    read as text."""
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


@pytest.mark.skipif(
    not shutil.which("ansible-inventory"), reason="ansible-core is not installed (./bootstrap installs it)"
)
@pytest.mark.parametrize("form", list(inventory.FORMATS))
def test_ansible_reads_it_as_written(tmp_path, form):
    lab = spec.load(paths.LABS / "dual.yaml")
    path = tmp_path / f"inventory.{form}"
    path.write_text(inventory.FORMATS[form](lab))
    listed = json.loads(
        subprocess.run(
            ["ansible-inventory", "--list", "-i", str(path)], capture_output=True, text=True, check=True, timeout=120
        ).stdout
    )
    groups, hosts = read_yaml(inventory.as_yaml(lab))
    assert listed["_meta"]["hostvars"] == hosts
    assert {group: listed[group]["hosts"] for group in groups} == groups


@pytest.mark.parametrize("form", [inventory.as_ini, inventory.as_yaml])
def test_the_header_names_the_launcher_the_user_runs(monkeypatch, form):
    monkeypatch.setenv("HALAB_LAUNCHER", "./bootstrap")
    assert form(spec.load()).splitlines()[0].endswith("from its lab file (./bootstrap lab.inventory)")
