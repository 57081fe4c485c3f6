"""lab.import without keepalived: the tokenizer, the dump reader, the table, and the lab's
verbatim files (spec rule and placement). tests/config/test_import.py runs the corpus
under tests/unit/imports/ through keepalived itself."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halab import render, spec
from halab.errors import SpecError
from halab.imports import dump, mapping, source, table
from halab.imports.source import ConfigRefused

CORPUS = Path(__file__).parent / "imports"


def _write(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- the tokenizer ------------------------------------------------------------------------


def test_words_split_as_keepalived_splits_them():
    here = source.Where("f", 1)
    assert source.words_of('notify_master "/x.sh a b" ! comment', here) == ["notify_master", "/x.sh a b"]
    assert source.words_of("virtual_ipaddress { 10.0.0.1 }# c", here) == ["virtual_ipaddress", "{", "10.0.0.1", "}"]
    assert source.words_of("  # all comment", here) == []


def test_blocks_nest_and_keep_their_lines(tmp_path):
    read = source.read(
        _write(tmp_path, "vrrp_instance VI_1\n{\n  state MASTER\n  virtual_ipaddress {\n 1.2.3.4\n }\n}\n"), "x"
    )
    (instance,) = read.find("vrrp_instance")
    assert instance.value("state") == "MASTER"
    assert instance.first("virtual_ipaddress").block[0].words == ("1.2.3.4",)
    assert str(instance.first("state").where) == "keepalived.conf:3"


def test_conditionals_and_variables_resolve_per_config_id():
    conf = CORPUS / "conditionals.conf"
    assert source.conditions(conf) == {"lb1", "lb2"}
    for ident, priority, own in (("lb1", "150", "10.44.0.2"), ("lb2", "100", "10.44.0.3")):
        (instance,) = source.read(conf, ident).find("vrrp_instance")
        assert instance.value("priority") == priority
        assert instance.value("unicast_src_ip") == own
        assert instance.first("virtual_ipaddress").block[0].words[0] == "10.44.0.50/24"


def test_includes_follow_globs_relative_to_the_including_file():
    read = source.read(CORPUS / "includes" / "keepalived.conf", "x")
    assert [path.name for path in read.files] == ["keepalived.conf", "vi1.conf", "vs.conf"]
    assert str(read.find("virtual_server")[0].where) == "conf.d/vs.conf:1"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("include ../../../../../../../../etc/passwd\n", "outside"),
        ("include nothing-here.conf\n", "no such file"),
        ("include /etc/keepalived/../../../../../../../../etc/passwd\n", "outside"),
        ("vrrp_instance X {\n", "never closed"),
        ("}\n", "closes no block"),
        ('notify "/x\n', "unclosed quote"),
        ("virtual_ipaddress { $NOPE }\n", "$NOPE is used but never defined"),
        ("~SEQ(n,1,3) x\n", "~SEQ"),
        ("@ bad\n", "conditional"),
        ("state\x07 MASTER\n", "control character"),
        ("x" * 2000 + "\n", "longer than 1024"),
        ("a {\n" * 40 + "}\n" * 40, "nest deeper"),
    ],
)
def test_hostile_files_are_refused_with_file_and_line(tmp_path, text, said):
    with pytest.raises(ConfigRefused, match=r"keepalived\.conf(:\d+)?: .*" + said.replace("$", r"\$")):
        source.read(_write(tmp_path, text), "x")


def test_a_path_traversal_by_link_is_refused(tmp_path):
    (tmp_path / "outside.conf").write_text("global_defs {}\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "x.conf").symlink_to(tmp_path / "outside.conf")
    with pytest.raises(ConfigRefused, match="outside"):
        source.read(_write(tmp_path / "conf", "include x.conf\n"), "x")


def test_huge_and_self_including_files_are_refused_quickly(tmp_path):
    started = time.monotonic()
    with pytest.raises(ConfigRefused, match="larger than"):
        source.read(_write(tmp_path, "global_defs {\n}\n" * 100_000), "x")
    with pytest.raises(ConfigRefused, match=r"includes nest deeper|more than 64 files"):
        source.read(_write(tmp_path, "include keepalived.conf\n"), "x")
    assert time.monotonic() - started < 10


# --- keepalived's dump --------------------------------------------------------------------


def test_a_recorded_dump_reads_as_keepalived_resolved_it():
    read = dump.parse((CORPUS / "recorded-dump.txt").read_text())
    assert read.globals_["Router ID"] == "X"
    first, second = read.instances
    assert (first.name, first.state, first.priority, first.router_id, first.version) == ("VI_1", "BACKUP", 90, 52, 3)
    assert (first.interface, first.preempt, first.advert_seconds) == ("ens33", False, 0.5)
    assert (first.source_address, first.unicast_peers, first.sync_group) == ("10.0.0.11", ["10.0.0.12"], "G1")
    assert first.vips == ["10.0.0.100/24", "10.0.0.101"]
    assert (second.preempt, second.advert_seconds, second.vips, second.source_address) == (
        True,
        1.0,
        ["192.168.50.1/24"],
        "",
    )
    assert any("Disabling track script chk_nginx" in message for message in read.messages)


# --- the table and the derived peer ---------------------------------------------------------


def test_the_table_aligns_and_shows_hostile_words_printably():
    rows = [mapping.Row("a\x1b[31m", "b"), mapping.Row("longer found", "lab", "why")]
    lines = table.text(rows).splitlines()
    assert len(lines) == 3 and "\x1b" not in "".join(lines)
    assert lines[1].index("|") == lines[2].index("|")


def test_a_single_files_peer_swaps_state_and_lowers_priority_only():
    conf = CORPUS / "single.conf"
    derived = mapping.derive(source.read(conf, "director2"), conf)
    changed = [(a, b) for a, b in zip(conf.read_text().split("\n"), derived.split("\n"), strict=True) if a != b]
    assert changed == [("    state MASTER", "    state BACKUP"), ("    priority 100", "    priority 50")]


# --- the lab's verbatim files ---------------------------------------------------------------

SEED = Path(__file__).parents[2] / "labs" / "seed.yaml"


def _with_files(files: str) -> str:
    return SEED.read_text().replace(
        "server3: {address: 172.25.1.1, role: director,",
        f"server3: {{files: {files}, address: 172.25.1.1, role: director,",
    )


def test_a_director_may_run_its_own_keepalived_conf():
    lab = spec.parse(_with_files("{/etc/keepalived/keepalived.conf: server3/keepalived.conf}"))
    assert lab.nodes["server3"].files == {"/etc/keepalived/keepalived.conf": "server3/keepalived.conf"}


@pytest.mark.parametrize(
    ("files", "said"),
    [
        ("{/etc/passwd: x}", "should be a file under /etc/keepalived/"),
        ("{/etc/keepalived/../shadow: x}", "should be a file under"),
        ("{/etc/keepalived/k.conf: ../../etc/shadow}", "relative to the lab's imported/"),
        ("{/etc/keepalived/k.conf: /etc/shadow}", "relative to the lab's imported/"),
        ("{/usr/local/nginx/conf/nginx.conf: x}", "a director reads no file there"),
    ],
)
def test_verbatim_files_stay_where_the_node_reads_them(files, said):
    with pytest.raises(SpecError, match=said):
        spec.parse(_with_files(files))


def test_placing_copies_byte_for_byte_over_the_rendered_file(tmp_path):
    lab = spec.parse(_with_files("{/etc/keepalived/keepalived.conf: server3/keepalived.conf}"))
    imported, rendered = tmp_path / "imported", tmp_path / "rendered"
    _write(imported, "! the operator's own\n", "server3/keepalived.conf")
    render.write(render.render(lab), rendered)
    (placed,) = render.place(lab, imported, rendered)
    assert placed == rendered / "server3/etc/keepalived/keepalived.conf"
    assert placed.read_text() == "! the operator's own\n" and placed.stat().st_mode & 0o777 == 0o600


def test_placing_refuses_a_missing_file_or_a_link_out(tmp_path):
    lab = spec.parse(_with_files("{/etc/keepalived/keepalived.conf: server3/keepalived.conf}"))
    imported = tmp_path / "imported"
    with pytest.raises(SpecError, match="is not a file of"):
        render.place(lab, imported, tmp_path / "rendered")
    (imported / "server3").mkdir(parents=True)
    (imported / "server3" / "keepalived.conf").symlink_to("/etc/hostname")
    with pytest.raises(SpecError, match="is not a file of"):
        render.place(lab, imported, tmp_path / "rendered")


# --- any text at all -----------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["{", "}", '"', "!", "#", "$X", "$X=1", "${X}", "@a ", "@^a ", "~SEQ", "include ", "*.conf", "../", "\n", " "]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=60))
def test_any_text_is_read_or_refused_never_an_exception(tmp_path, pieces):
    path = tmp_path / "keepalived.conf"
    path.write_bytes("".join(pieces).encode("utf-8", "surrogatepass"))
    try:
        read = source.read(path, "a")
    except ConfigRefused as exc:
        assert str(exc).startswith(("keepalived.conf", str(path)))
    else:
        assert all(item.where.file for item in read.items)
