"""Rendering: golden files for each example lab, and the properties the errata demand.

The golden trees under golden/<lab>/ were reviewed by eye against the write-up once.
After an intended change, regenerate them with HALAB_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from pydantic import BaseModel

from halab import paths, render, spec
from halab.errors import SpecError

GOLDEN = Path(__file__).parent / "golden"
LABS = Path(__file__).resolve().parents[2] / "labs"


@pytest.mark.parametrize("lab_file", paths.shipped_labs(), ids=lambda path: path.stem)
def test_rendering_matches_golden_files(lab_file):
    files = render.render(spec.load(lab_file))
    name = lab_file.stem
    golden = GOLDEN / name
    if os.environ.get("HALAB_UPDATE_GOLDEN"):
        render.write(files, golden)
    expected = {str(p.relative_to(golden)): p.read_text() for p in golden.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(expected)
    for path, text in files.items():
        assert text == expected[path], f"{name}/{path} differs from its golden file"


# Renders every shipped lab in a fresh interpreter and prints the files as JSON.
RENDER_SHIPPED = (
    "import json, sys; from halab import paths, render, spec; "
    "json.dump({path.stem: render.render(spec.load(path)) for path in paths.shipped_labs()}, sys.stdout)"
)


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_rendering_is_the_same_in_any_process(hash_seed, tmp_path):
    """Another interpreter renders every shipped lab to the same text as this one: with another
    hash seed (so another order for any set of strings), working directory and time zone. The
    golden files would catch a set's order only now and then, as each run draws its own seed."""
    result = subprocess.run(
        [sys.executable, "-c", RENDER_SHIPPED],
        cwd=tmp_path,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": "Pacific/Kiritimati"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == {path.stem: render.render(spec.load(path)) for path in paths.shipped_labs()}


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
    differing = [(a.strip(), b.strip()) for a, b in zip(master, backup, strict=False) if a != b]
    assert [pair for pair in differing if not pair[0].startswith("!")] == [
        ("state MASTER", "state BACKUP"),
        ("priority 100", "priority 50"),
    ]


def test_each_real_server_mangles_arp_to_its_own_address():
    files = render.render(spec.load())
    for name, address in (("server1", "172.25.1.101"), ("server2", "172.25.1.102")):
        script = files[f"{name}/usr/local/sbin/lvs-realserver"]
        assert f'SELF="{address}"' in script and 'VIPS="172.25.1.100"' in script
        assert files[f"{name}/usr/local/nginx/html/index.html"] == f"<h1>{name}'s page</h1>\n"
        assert "user  nginx nginx;" in files[f"{name}/usr/local/nginx/conf/nginx.conf"]


def test_a_nat_real_server_routes_its_replies_by_source_and_keeps_other_default_routes():
    """The reply route is a policy rule on the server's own address, so a VM's management
    default route (or a cloud's) stays for the host's own traffic; the main table gets the
    gateway only at a metric any other default outranks."""
    script = render.render(spec.load(LABS / "nat.yaml"))["server1/usr/local/sbin/lvs-realserver"]
    assert 'SELF="172.25.2.101"' in script and 'GATEWAY="172.25.2.100"' in script
    assert 'ip rule "$1" from "$SELF" lookup main suppress_prefixlength 0' in script
    assert 'ip rule "$1" from "$SELF" lookup "$TABLE"' in script
    assert 'ip route replace default via "$GATEWAY" table "$TABLE"' in script
    assert 'ip route replace default via "$GATEWAY" metric "$FALLBACK_METRIC"' in script
    assert 'ip route replace default via "$GATEWAY"\n' not in script  # never the main default itself
    assert script.index("    wait_for_address\n") < script.index('ip route replace default via "$GATEWAY" table')


def test_active_active_makes_each_director_master_of_one_vip():
    lab = spec.load(LABS / "dual.yaml")
    three, four = render.instances(lab, "server3"), render.instances(lab, "server4")
    assert [(i.name, i.vrid, i.vips, i.state, i.priority) for i in three] == [
        ("VI_1", 51, ("172.25.1.100",), "MASTER", 100),
        ("VI_2", 52, ("172.25.1.200",), "BACKUP", 50),
    ]
    assert [(i.name, i.vrid, i.vips, i.state, i.priority) for i in four] == [
        ("VI_1", 51, ("172.25.1.100",), "BACKUP", 50),
        ("VI_2", 52, ("172.25.1.200",), "MASTER", 100),
    ]


def test_nopreempt_starts_every_director_as_backup():
    lab = spec.load(LABS / "unicast.yaml")
    conf = render.keepalived_conf(lab, "server3")
    assert "state BACKUP" in conf and "nopreempt" in conf and "state MASTER" not in conf
    assert "unicast_src_ip 172.25.1.1" in conf and "172.25.1.2" in conf.split("unicast_peer {")[1]


def test_lab_json_lists_every_node():
    data = json.loads(render.render(spec.load())["lab.json"])
    assert [(n["name"], n["address"], n["role"]) for n in data["nodes"]] == [
        ("server1", "172.25.1.101", "realserver"),
        ("server2", "172.25.1.102", "realserver"),
        ("server3", "172.25.1.1", "director"),
        ("server4", "172.25.1.2", "director"),
        ("client", "172.25.1.250", "client"),
    ]
    assert data["vips"] == ["172.25.1.100"]


def test_write_makes_scripts_executable(tmp_path):
    written = render.write(render.render(spec.load()), tmp_path)
    script = tmp_path / "server1" / render.REALSERVER_SCRIPT
    assert script in written and os.access(script, os.X_OK)
    assert not os.access(tmp_path / "server3" / render.KEEPALIVED_CONF, os.X_OK)


# --- hostile values forced past validation ------------------------------------------------

# Values that would change a file's structure if rendered as they are: a new line, a block
# end, a quote, a comment mark, shell expansion, a blank, nothing, an overlong word, a
# keepalived line-start mark, and paths that leave the render tree.
HOSTILE = [
    "x\n}",
    "x}",
    'x"',
    "x#y",
    "x!y",
    "}\nglobal_defs {\n script_user root\n}",
    "$(reboot)",
    "x y",
    "",
    "x" * 300,
    "@x",
    "~SEQ(a,1,2)",
    "x\\",
    "x;id",
    "/etc",
    "a/../../x",
]

# The fields a lab file's author writes freely, each of which must be among those forced.
FREE_TEXT = {
    "name",
    "router_id",
    "address",
    "vip",
    "to",
    "from_",
    "smtp_server",
    "path",
    "interface",
    "box",
    "box_fallback",
    "keepalived",
    "nginx",
}

Step = tuple[str, object]  # ("field", name) | ("index", i) | ("value", key) | ("key", key)


def _leaves(obj: object, steps: tuple[Step, ...] = ()) -> list[tuple[Step, ...]]:
    """The path to every string and address in the model: field values, list items and dict keys."""
    if isinstance(obj, BaseModel):
        return [
            leaf for name in type(obj).model_fields for leaf in _leaves(getattr(obj, name), (*steps, ("field", name)))
        ]
    if isinstance(obj, tuple):
        return [leaf for i, item in enumerate(obj) for leaf in _leaves(item, (*steps, ("index", i)))]
    if isinstance(obj, dict):
        return [
            leaf
            for key, value in obj.items()
            for leaf in [(*steps, ("key", key)), *_leaves(value, (*steps, ("value", key)))]
        ]
    return [steps] if isinstance(obj, (str, IPv4Address)) else []


def _forced(lab: spec.Lab, steps: tuple[Step, ...], value: object) -> spec.Lab:
    """The lab with the leaf at `steps` replaced, bypassing validation (model_copy does not validate).

    A node's name (a key of nodes or real_servers, a unicast peer, a node as smtp_server) is
    renamed everywhere it is used, so references still resolve.
    """
    current = _at(lab, steps)
    return _renamed(lab, current, value) if current in lab.nodes else _replaced(lab, steps, value)


def _at(obj: object, steps: tuple[Step, ...]) -> object:
    """The leaf at `steps`; for a dict key, the key itself."""
    for kind, at in steps:
        obj = getattr(obj, at) if kind == "field" else at if kind == "key" else obj[at]
    return obj


def _replaced(obj: object, steps: tuple[Step, ...], value: object) -> object:
    if not steps:
        return value
    (kind, at), rest = steps[0], steps[1:]
    if kind == "field":
        return obj.model_copy(update={at: _replaced(getattr(obj, at), rest, value)})
    if kind == "index":
        return tuple(_replaced(item, rest, value) if i == at else item for i, item in enumerate(obj))
    return {key: _replaced(item, rest, value) if key == at else item for key, item in obj.items()}


def _renamed(obj: object, old: object, new: object) -> object:
    if isinstance(obj, BaseModel):
        return obj.model_copy(update={name: _renamed(getattr(obj, name), old, new) for name in type(obj).model_fields})
    if isinstance(obj, tuple):
        return tuple(_renamed(item, old, new) for item in obj)
    if isinstance(obj, dict):
        return {(new if key == old else key): _renamed(value, old, new) for key, value in obj.items()}
    return new if obj == old and isinstance(obj, str) else obj


def _shape(path: str, text: str) -> object:
    """What a file's reader sees, without the words themselves: lines, blocks, words per line."""
    if path.endswith(".json"):
        return _json_shape(json.loads(text))
    if path.endswith(render.REALSERVER_SCRIPT):
        return [_shell_words(line) for line in text.splitlines()]
    comment = "#" if path.endswith("nginx.conf") else "[!#]" if path.endswith("keepalived.conf") else "$^"
    words = r'"[^"]*"|[{};"]|[^\s{};"]+'
    return [len(re.findall(words, re.split(comment, line, maxsplit=1)[0])) for line in text.splitlines()]


def _shell_words(line: str) -> int | str:
    try:
        return len(shlex.split(line, comments=True))
    except ValueError:
        return "unbalanced"


def _json_shape(data: object) -> object:
    if isinstance(data, dict):
        return {key: _json_shape(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_json_shape(item) for item in data]
    return type(data).__name__


def _shapes(lab: spec.Lab) -> dict[str, object]:
    return {path: _shape(path, text) for path, text in render.render(lab).items()}


@pytest.mark.parametrize("lab_file", paths.shipped_labs(), ids=lambda path: path.stem)
def test_a_hostile_value_in_any_field_is_refused_or_changes_no_structure(lab_file):
    """Each leaf is compared with the same leaf holding a harmless word, which takes the same
    template branches (a role or state that matches nothing) but cannot change structure."""
    lab = spec.load(lab_file)
    leaves = _leaves(lab)
    fields = {[at for kind, at in steps if kind == "field"][-1] for steps in leaves}
    assert fields >= FREE_TEXT and ("auth_pass" in fields) == (lab.vrrp.authentication is not None)
    refused = 0
    for steps in leaves:
        harmless = _shapes(_forced(lab, steps, "x"))
        for value in HOSTILE:
            try:
                shapes = _shapes(_forced(lab, steps, value))
            except SpecError as exc:
                assert "refusing to" in str(exc) and len(str(exc)) < 500
                refused += 1
                continue
            assert shapes == harmless, (steps, value)
    assert refused > len(leaves) * len(HOSTILE) // 2


def test_a_path_outside_the_target_is_never_written(tmp_path):
    for relative in ("../escape", "/etc/passwd", "a/../../b"):
        with pytest.raises(SpecError, match="it would land outside"):
            render.write({relative: "x"}, tmp_path / "t")
    assert not (tmp_path / "escape").exists()


def test_every_interpolation_is_checked_by_finalize():
    """The templates may print only through `_word`: nothing like a `|safe` escape hatch exists."""
    assert render._ENV.finalize is render._word
    for template in (Path(render.__file__).parent / "templates").glob("*.j2"):
        assert "| safe" not in template.read_text() and "|safe" not in template.read_text()


def test_a_file_holding_auth_pass_is_root_s_alone_scripts_run_the_rest_is_readable(tmp_path):
    target = tmp_path / "rendered"
    (target / "server3" / "etc" / "keepalived").mkdir(parents=True)
    (target / "server3" / "etc" / "keepalived" / "keepalived.conf").write_text("old")
    (target / "server3" / "etc" / "keepalived" / "keepalived.conf").chmod(0o644)  # a stale copy keeps no mode
    written = {
        p.relative_to(target).as_posix(): p.stat().st_mode & 0o777
        for p in render.write(render.render(spec.load()), target)
    }
    assert written["server3/etc/keepalived/keepalived.conf"] == 0o600
    assert written["server1/usr/local/sbin/lvs-realserver"] == 0o755
    assert written["server1/usr/local/nginx/conf/nginx.conf"] == 0o644


def test_connection_sync_renders_the_sync_daemon_and_keeps_ipvs_on_a_clean_stop():
    fast = render.render(spec.load(LABS / "fast.yaml"))
    seed = render.render(spec.load(LABS / "seed.yaml"))
    for director in ("server3", "server4"):
        conf = fast[f"{director}/{render.KEEPALIVED_CONF}"]
        assert re.search(r"^   lvs_sync_daemon eth0 VI_1$", conf, re.M)  # global_defs: interface, instance
        assert "--dont-release-ipvs" in fast[f"{director}/{render.KEEPALIVED_OPTIONS}"]
        assert "lvs_sync_daemon" not in seed[f"{director}/{render.KEEPALIVED_CONF}"]
        assert f"{director}/{render.KEEPALIVED_OPTIONS}" not in seed  # the build's own options stay


@pytest.mark.parametrize(
    ("launcher", "said"),
    [
        ("./bootstrap", "run `./bootstrap lab.render`."),
        ("/opt/venv/bin/invoke", "run `/opt/venv/bin/invoke lab.render`."),
        ("python3 -m invoke", "run the lab.render task."),  # -m is no word a config may hold
    ],
)
def test_the_rendered_files_name_the_launcher_the_user_runs(monkeypatch, launcher, said):
    monkeypatch.setenv("HALAB_LAUNCHER", launcher)
    files = render.render(spec.load())
    assert f"edit that and {said}" in files["server3/etc/keepalived/keepalived.conf"]
    assert f"edit that and {said}" in files["server1/usr/local/nginx/conf/nginx.conf"]


def test_a_preempt_delay_is_rendered_and_starts_every_director_as_backup():
    """keepalived honours preempt_delay only on an instance that starts as BACKUP."""
    seed = (LABS / "seed.yaml").read_text()
    lab = spec.parse(seed.replace("  preempt: true ", "  preempt: true\n  preempt_delay: 20\n "))
    conf = render.keepalived_conf(lab, "server3")
    assert "    preempt_delay 20\n" in conf and "state BACKUP" in conf and "state MASTER" not in conf
    assert "nopreempt" not in conf and "preempt_delay needs initial state BACKUP" in conf
    assert "preempt_delay" not in render.keepalived_conf(spec.load(LABS / "seed.yaml"), "server3")


def test_a_preempt_delay_with_nopreempt_is_refused():
    seed = (LABS / "seed.yaml").read_text()
    with pytest.raises(SpecError, match=r"vrrp\.preempt_delay.*means nothing with preempt: false"):
        spec.parse(seed.replace("  preempt: true ", "  preempt: false\n  preempt_delay: 5\n "))


def test_every_director_records_its_state_changes_through_the_notify_script():
    """The notify stream: keepalived runs the project's script (through /bin/sh, with script
    security on, so `keepalived -t` stays silent) on every state change of every instance."""
    files = render.render(spec.load(LABS / "dual.yaml"))
    for director in ("server3", "server4"):
        conf = files[f"{director}/{render.KEEPALIVED_CONF}"]
        assert conf.count(f'    notify "/bin/sh /{render.NOTIFY_SCRIPT}"\n') == 2
        assert "   script_user root\n   enable_script_security\n" in conf and "smtp_alert" in conf
        assert render.NOTIFY_LOG in files[f"{director}/{render.NOTIFY_SCRIPT}"]
    assert render.mode_of(f"server3/{render.NOTIFY_SCRIPT}") == 0o755
    assert not any(path.startswith("server1/") and path.endswith(render.NOTIFY_SCRIPT) for path in files)
