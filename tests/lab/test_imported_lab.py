"""The write-up's own configuration, imported, booted and proven: what each erratum breaks.

examples/write-up/ holds the write-up's two directors' keepalived.conf and its real-server
arptables commands, errata as written. Imported, the directors run those files verbatim;
acceptance then shows keepalived's own complaints about the config errata (warnings: it runs
the files, ignoring the lines it names) and the ARP check failing on the real server whose
mangle address is wrong, while everything the errata do not touch passes.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from halab import environment, paths, spec
from halab.imports import mapping
from halab.paths import LabPaths
from halab.prove import session
from halab.providers.local.provider import LocalProvider
from tests.fixtures import SUITE_VERSIONS, assert_clean, needs_root

pytestmark = [needs_root("boots the imported lab on the local provider"), pytest.mark.root]
EXAMPLE = paths.ROOT / "examples" / "write-up"
BLOG = paths.ROOT / "tests" / "unit" / "imports"
CONFIG_CHECK = "test_keepalived_config_is_clean_on_every_director"
NAME = "t-imported"
# keepalived's own complaints about the config errata: it runs the files anyway (each named
# line ignored), so the config check passes with them as warnings, on both directors.
COMPLAINTS = ["vrrp_garp_interval '0' is invalid", "Unknown keyword 'weight'"]
# The checks the errata break, and what each failure must say.
BROKEN = {
    # real1 (172.25.1.101) mangles the VIP's ARP source into .102, as the write-up's server1 does
    "test_real_servers_never_answer_arp_for_a_vip": ["'--mangle-ip-s'", "'172.25.1.102'"],
}


def _outcomes(provider: LocalProvider) -> dict[str, dict]:
    """The last acceptance run's results by test name (without the lab's parameter)."""
    runs = sorted(provider.paths.artifacts.glob("*-acceptance"))
    report = json.loads((runs[-1] / "acceptance.json").read_text())
    return {test["test"].split("::")[1].split("[")[0]: test for test in report["tests"]}


@contextlib.contextmanager
def booted(builds, tmp_path: Path, confs: list[Path], **options: Path) -> Iterator[LocalProvider]:
    """The lab lab.import makes of confs, up, its directors running the files verbatim; torn
    down (and checked clean) after."""
    result = mapping.build(confs, builds["keepalived"].binary, NAME, **options)
    assert result.lab is not None, result
    mapping.write(result, tmp_path / "imported.yaml", LabPaths(NAME).imported)
    provider = LocalProvider(spec.load(tmp_path / "imported.yaml"), progress=lambda _: None)
    try:
        provider.up()
        for node, placed in result.files.items():
            for guest, local in placed.items():
                running = provider.paths.node_files(node) / guest.strip("/")
                assert running.read_bytes() == local.read_bytes(), f"{node} does not run {local.name} verbatim"
        yield provider
    finally:
        provider.down()
    assert_clean(NAME)


@pytest.fixture(autouse=True)
def suite_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """An imported lab names no versions (the defaults hold); the suite's builds stand in for
    them as an operator's HALAB_*_VERSION would on a host that cannot fetch the write-up's nginx."""
    for name, version in SUITE_VERSIONS.items():
        monkeypatch.setenv(environment.version_variable(name), version)


def test_the_write_ups_errata_show_when_its_own_files_run(builds, tmp_path):
    confs = [EXAMPLE / "keepalived-server3.conf", EXAMPLE / "keepalived-server4.conf"]
    with booted(builds, tmp_path, confs, realserver_setup=EXAMPLE / "realserver-arptables.sh") as provider:
        assert not session.acceptance(provider, destroy="never", args=["-q", "-kcluster"])
        outcomes = _outcomes(provider)
        for test, said in BROKEN.items():
            assert outcomes[test]["outcome"] == "failed", outcomes[test]
            for words in said:
                assert words in outcomes[test]["message"], outcomes[test]["message"]
        warned = outcomes[CONFIG_CHECK]
        assert warned["outcome"] == "passed" and set(warned["warnings"]) == {"server3", "server4"}, warned
        for lines in warned["warnings"].values():
            assert all(any(words in line for line in lines) for words in COMPLAINTS), lines
        others = {name: test["outcome"] for name, test in outcomes.items() if name not in BROKEN}
        assert set(others.values()) <= {"passed", "skipped"}, others
        assert others["test_requests_through_each_vip_follow_the_scheduler"] == "passed"
        assert provider.lab.nodes["server3"].state == "MASTER"


def test_the_classic_blog_pair_boots_and_passes_acceptance(builds, tmp_path):
    """The two-director LVS-DR pair as blog posts write it: keepalived runs it despite its
    complaints (nb_get_retry is no TCP_CHECK keyword, persistence_timeout 0 is out of range),
    so acceptance passes, with those complaints as warnings."""
    confs = [BLOG / "blog-dr-master.conf", BLOG / "blog-dr-backup.conf"]
    with booted(builds, tmp_path, confs) as provider:
        assert session.acceptance(provider, destroy="never", args=["-q", "-kcluster"])
        outcomes = _outcomes(provider)
        assert {test["outcome"] for test in outcomes.values()} <= {"passed", "skipped"}, outcomes
        assert outcomes["test_requests_through_each_vip_follow_the_scheduler"]["outcome"] == "passed"
        complaints = [line for lines in outcomes[CONFIG_CHECK]["warnings"].values() for line in lines]
        assert any("Unknown keyword 'nb_get_retry'" in line for line in complaints), complaints


def test_a_script_named_by_its_absolute_path_runs_on_the_director(builds, tmp_path):
    """The blog pair's MASTER, tracking /etc/keepalived/check_nginx.sh (supplied with --file)
    under script security as root: the guest's /etc/keepalived is the node's own, so
    keepalived finds the script there and runs it (it fails on a director, which serves no
    page: its weight lowers the priority)."""
    script = "/etc/keepalived/check_nginx.sh"
    master = (BLOG / "blog-dr-master.conf").read_text()
    tracked = master.replace(
        "vrrp_instance VI_1 {",
        f"global_defs {{\n    enable_script_security\n    script_user root\n}}\n"
        f'vrrp_script chk_nginx {{\n    script "{script}"\n    interval 2\n    weight -20\n}}\n'
        "vrrp_instance VI_1 {\n    track_script {\n        chk_nginx\n    }",
    )
    conf = tmp_path / "keepalived.conf"
    conf.write_text(tracked.replace("global_defs {\n    router_id LVS_01\n}\n", ""))
    check = tmp_path / "check_nginx.sh"
    check.write_bytes((BLOG / "check_nginx.sh").read_bytes())
    check.chmod(0o755)  # a script keepalived runs (the corpus's copy is not executable)
    with booted(builds, tmp_path, [conf], extra={script: check}) as provider:
        director = next(iter(provider.lab.role("director")))
        deadline = time.monotonic() + 30
        log = ""
        while "Script `chk_nginx` now returning" not in log and time.monotonic() < deadline:
            time.sleep(1)
            log = provider.remote.check(director, provider.log_command("keepalived"), timeout=20)
            log = log[log.rfind("Starting Keepalived") :]  # this boot's: a lab of the same name logged before
        assert "Script `chk_nginx` now returning" in log, log[-2000:]
        assert f"Script {script} cannot be accessed" not in log and "Disabling track script" not in log, log[-2000:]
