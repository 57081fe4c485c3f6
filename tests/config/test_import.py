"""lab.import on the corpus under tests/unit/imports/, with keepalived itself as the parser:
for each configuration the mapping table, and either a valid lab or the refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from halab import paths, spec
from halab.imports import mapping, table
from tests.fixtures import needs_root

pytestmark = needs_root("keepalived runs as nobody in a user+net+mount namespace it drops to from root")

CORPUS = Path(__file__).parents[1] / "unit" / "imports"
EXAMPLE = paths.ROOT / "examples" / "write-up"

# files, then rows the table must have (found, lab or consequence: substrings of one row)
RUNNABLE = {
    "write-up (DR, two files, errata)": (
        [EXAMPLE / "keepalived-server3.conf", EXAMPLE / "keepalived-server4.conf"],
        [
            ("keepalived -t", "vrrp_garp_interval '0' is invalid"),
            ("keepalived -t", "Unknown keyword 'weight'"),
            ("weight inside TCP_CHECK", "keeps weight 1"),
            ("server3: VI_1", "MASTER priority 100"),
            ("smtp_server 127.0.0.1", "acceptance cannot check it"),
        ],
    ),
    "NAT with a gateway VIP, sync group": (
        [CORPUS / "nat-gateway.conf", CORPUS / "nat-gateway-backup.conf"],
        [("VIP 10.30.0.1", "their gateway, held by VRRP"), ("vrrp_sync_group G", "move together")],
    ),
    "NAT without a gateway VIP": (
        [CORPUS / "nat-no-gateway.conf"],
        [("no VIP in the real servers'", "requests time out")],
    ),
    "TUN": ([CORPUS / "tun.conf"], [("virtual_server 192.168.60.100 80", "TUN")]),
    "one file, derived peer": ([CORPUS / "single.conf"], [("one file, no @ conditionals", "derived")]),
    "conditionals, variables, unicast, VRRPv3, nopreempt, HTTP_GET and SSL_GET": (
        [CORPUS / "conditionals.conf"],
        [
            ("@ conditionals for lb1, lb2", "with their config id"),
            ("lb1: unicast_src_ip 10.44.0.2", "its address"),
            ("states: all BACKUP", "lb1, the highest priority"),
            ("vrrp_instance VI_1", "advert_int 0.5, VRRPv3, ens192, nopreempt"),
            ("SSL_GET", "no certificates"),
        ],
    ),
    "the classic blog LVS-DR pair": (
        [CORPUS / "blog-dr-master.conf", CORPUS / "blog-dr-backup.conf"],
        [
            ("blog-dr-master: VI_1", "MASTER priority 100"),
            ("virtual_server 192.168.10.100 80", "wrr/DR to real1, real2"),
        ],
    ),
    "keepalived's sample style: groups, fwmark, SSL_GET, a fractional delay_loop, an odd password": (
        [CORPUS / "sample-style.conf"],
        [
            ("virtual_server group SG", "not modelled"),
            ("virtual_server fwmark 7", "not modelled"),
            ("virtual_server 10.10.10.2 1358", "'6.5' is not a whole number"),
            ("auth_type PASS", "the model omits it"),
            ("SSL_GET", "no certificates"),
        ],
    ),
    "includes, scripts missing": (
        [CORPUS / "includes" / "keepalived.conf"],
        [
            ("vrrp_script chk_nginx /etc/keepalived/check_nginx.sh", "keepalived disables the script"),
            ("notify_master /etc/keepalived/notify.sh (conf.d/vi1.conf:12)", "not supplied"),
            ("MISC_CHECK /etc/keepalived/check_rs.sh", "marked down"),
        ],
    ),
}

REFUSED = {
    "include out of the directory": ([CORPUS / "traversal" / "keepalived.conf"], "include"),
    "shell metacharacters in names": ([CORPUS / "metachar.conf"], "no vrrp_instance"),
    "IPv6 VIPs and fwmark services only": ([CORPUS / "ipv6-fwmark.conf"], "IPv6 is not modelled"),
    "not a keepalived.conf": ([CORPUS / "check_nginx.sh"], "no vrrp_instance block"),
}


def test_a_file_that_is_no_keepalived_conf_is_refused_without_being_echoed(builds):
    """/etc/passwd given by mistake: one row, not keepalived's complaint about each of its lines."""
    result = mapping.build([CORPUS / "check_nginx.sh"], builds["keepalived"].binary, "t-import")
    assert [row.found for row in result.rows] == ["the lab"], table.text(result.rows)
    assert "curl" not in table.text(result.rows)


def _has(rows: list[mapping.Row], found: str, said: str) -> bool:
    return any(found in row.found and (said in row.lab or said in row.missing) for row in rows)


@pytest.mark.parametrize("case", RUNNABLE)
def test_a_runnable_configuration_makes_a_valid_lab_and_says_what_it_brought(case, builds, tmp_path):
    files, expected = RUNNABLE[case]
    result = mapping.build(files, builds["keepalived"].binary, "t-import")
    shown = table.text(result.rows)
    assert result.lab is not None, shown
    for found, said in expected:
        assert _has(result.rows, found, said), f"no row {found!r} / {said!r} in\n{shown}"
    lab = mapping.write(result, tmp_path / "lab.yaml", tmp_path / "imported")
    assert spec.load(tmp_path / "lab.yaml") == lab
    for name, node in lab.role("director").items():
        conf = tmp_path / "imported" / node.files["/etc/keepalived/keepalived.conf"]
        if result.derived.get(name):
            assert conf.read_text() == result.derived[name]["/etc/keepalived/keepalived.conf"]
        else:
            assert conf.read_bytes() == result.files[name]["/etc/keepalived/keepalived.conf"].read_bytes()


@pytest.mark.parametrize("case", REFUSED)
def test_a_configuration_nothing_runnable_comes_of_is_refused_in_the_table(case, builds):
    files, said = REFUSED[case]
    result = mapping.build(files, builds["keepalived"].binary, "t-import")
    assert result.lab is None
    assert _has(result.rows, "the lab", said), table.text(result.rows)


@pytest.mark.parametrize("conf", sorted(CORPUS.rglob("*.conf")), ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_file_of_the_corpus_alone_ends_in_a_lab_or_a_refusal_never_an_exception(conf, builds):
    result = mapping.build([conf], builds["keepalived"].binary, "t-import")
    assert result.rows and table.text(result.rows)
    assert (result.lab is None) == any(row.found == "the lab" for row in result.rows)


def test_a_script_supplied_with_file_is_placed_verbatim_beside_the_config(builds, tmp_path):
    script = CORPUS / "check_nginx.sh"
    guest = "/etc/keepalived/check_nginx.sh"
    result = mapping.build(
        [CORPUS / "includes" / "keepalived.conf"], builds["keepalived"].binary, "t-import", extra={guest: script}
    )
    assert _has(result.rows, f"vrrp_script chk_nginx {guest}", "placed verbatim from --file"), table.text(result.rows)
    # the corpus's copy is not executable: keepalived would disable it, and the table says so
    assert _has(result.rows, f"vrrp_script chk_nginx {guest}", "check_nginx.sh is not executable: keepalived disables")
    assert _has(result.rows, "notify_master /etc/keepalived/notify.sh", "not supplied")
    lab = mapping.write(result, tmp_path / "lab.yaml", tmp_path / "imported")
    for node in lab.role("director").values():
        assert (tmp_path / "imported" / node.files[guest]).read_bytes() == script.read_bytes()
        assert (tmp_path / "imported" / node.files["/etc/keepalived/conf.d/vs.conf"]).exists()


def test_the_task_exits_0_with_a_lab_and_2_with_only_the_table(builds, tmp_path):
    env = {**os.environ, "HALAB_KEEPALIVED_VERSION": builds["keepalived"].pin.version}

    def imported(conf: str, output: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "invoke", "lab.import", str(CORPUS / conf), "--name", "t-import"]
        return subprocess.run(
            [*command, "--output", str(tmp_path / output)],
            capture_output=True,
            text=True,
            cwd=paths.ROOT,
            env=env,
            timeout=120,
        )

    written = imported("tun.conf", "tun.yaml")
    assert written.returncode == 0, written.stdout + written.stderr
    assert "virtual_server 192.168.60.100 80" in written.stdout and (tmp_path / "tun.yaml").exists()
    refused = imported("ipv6-fwmark.conf", "v6.yaml")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "IPv6 is not modelled" in refused.stdout and "Traceback" not in refused.stderr
    assert not (tmp_path / "v6.yaml").exists()
