"""Rendering: golden files for each example lab, and the properties the errata demand.

The golden trees under golden/<lab>/ were reviewed by eye against the write-up once.
After an intended change, regenerate them with HALAB_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from halab import render, spec

GOLDEN = Path(__file__).parent / "golden"
LABS = Path(__file__).resolve().parents[2] / "labs"
EXAMPLES = ["seed", "active-active", "unicast"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_rendering_matches_golden_files(name):
    files = render.render(spec.load(LABS / f"{name}.yaml"))
    golden = GOLDEN / name
    if os.environ.get("HALAB_UPDATE_GOLDEN"):
        render.write(files, golden)
    expected = {str(p.relative_to(golden)): p.read_text() for p in golden.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(expected)
    for path, text in files.items():
        assert text == expected[path], f"{name}/{path} differs from its golden file"


def test_rendering_is_pure_and_deterministic():
    lab = spec.load()
    assert render.render(lab) == render.render(lab)


def test_seed_keepalived_conf_fixes_the_errata():
    conf = render.render(spec.load())["server3/etc/keepalived/keepalived.conf"]
    lines = [line.strip() for line in conf.splitlines()]
    assert "vrrp_strict" not in lines and any("vrrp_strict stays off" in line for line in lines)
    assert "vrrp_garp_interval 0" not in lines and "vrrp_gna_interval 0" not in lines
    for block in conf.split("real_server ")[1:]:
        head, check = block.split("TCP_CHECK {", 1)
        assert "weight 1" in head and "weight" not in check.split("}", 1)[0]


def test_directors_differ_only_in_state_and_priority():
    files = render.render(spec.load())
    master = files["server3/etc/keepalived/keepalived.conf"].splitlines()
    backup = files["server4/etc/keepalived/keepalived.conf"].splitlines()
    differing = [(a.strip(), b.strip()) for a, b in zip(master, backup) if a != b]
    assert [pair for pair in differing if not pair[0].startswith("!")] == [
        ("state MASTER", "state BACKUP"), ("priority 100", "priority 50")]


def test_each_real_server_mangles_arp_to_its_own_address():
    files = render.render(spec.load())
    for name, address in (("server1", "172.25.1.101"), ("server2", "172.25.1.102")):
        script = files[f"{name}/usr/local/sbin/lvs-realserver"]
        assert f'SELF="{address}"' in script and 'VIPS="172.25.1.100"' in script
        assert files[f"{name}/usr/local/nginx/html/index.html"] == f"<h1>{name}'s page</h1>\n"
        assert "user  nginx nginx;" in files[f"{name}/usr/local/nginx/conf/nginx.conf"]


def test_active_active_makes_each_director_master_of_one_vip():
    lab = spec.load(LABS / "active-active.yaml")
    three, four = render.instances(lab, "server3"), render.instances(lab, "server4")
    assert [(i.name, i.vrid, i.vips, i.state, i.priority) for i in three] == [
        ("VI_1", 51, ("172.25.1.100",), "MASTER", 100), ("VI_2", 52, ("172.25.1.200",), "BACKUP", 50)]
    assert [(i.name, i.vrid, i.vips, i.state, i.priority) for i in four] == [
        ("VI_1", 51, ("172.25.1.100",), "BACKUP", 50), ("VI_2", 52, ("172.25.1.200",), "MASTER", 100)]


def test_nopreempt_starts_every_director_as_backup():
    lab = spec.load(LABS / "unicast.yaml")
    conf = render.keepalived_conf(lab, "server3")
    assert "state BACKUP" in conf and "nopreempt" in conf and "state MASTER" not in conf
    assert "unicast_src_ip 172.25.1.1" in conf and "172.25.1.2" in conf.split("unicast_peer {")[1]


def test_lab_json_lists_every_node():
    data = json.loads(render.render(spec.load())["lab.json"])
    assert [(n["name"], n["address"], n["role"]) for n in data["nodes"]] == [
        ("server1", "172.25.1.101", "realserver"), ("server2", "172.25.1.102", "realserver"),
        ("server3", "172.25.1.1", "director"), ("server4", "172.25.1.2", "director"),
        ("client", "172.25.1.250", "client")]
    assert data["vips"] == ["172.25.1.100"]


def test_write_makes_scripts_executable(tmp_path):
    written = render.write(render.render(spec.load()), tmp_path)
    script = tmp_path / "server1" / render.REALSERVER_SCRIPT
    assert script in written and os.access(script, os.X_OK)
    assert not os.access(tmp_path / "server3" / render.KEEPALIVED_CONF, os.X_OK)
