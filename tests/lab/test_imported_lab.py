"""The write-up's own configuration, imported, booted and proven: what each erratum breaks.

examples/write-up/ holds the write-up's two directors' keepalived.conf and its real-server
arptables commands, errata as written. Imported, the directors run those files verbatim;
acceptance then shows keepalived's own complaints about the config errata and the ARP check
failing on the real server whose mangle address is wrong, while everything the errata do
not touch passes.
"""

from __future__ import annotations

import json

import pytest

from halab import environment, paths, spec
from halab.imports import mapping
from halab.paths import LabPaths
from halab.prove import session
from halab.providers.local.provider import LocalProvider
from tests.fixtures import SUITE_VERSIONS, assert_clean, needs_root

pytestmark = [needs_root("boots the imported lab on the local provider"), pytest.mark.root]
EXAMPLE = paths.ROOT / "examples" / "write-up"
NAME = "t-imported"
# The checks the errata break, and what each failure must say.
BROKEN = {
    "test_keepalived_config_is_clean_on_every_director": [
        "vrrp_garp_interval '0' is invalid",
        "Unknown keyword 'weight'",
    ],
    # real1 (172.25.1.101) mangles the VIP's ARP source into .102, as the write-up's server1 does
    "test_real_servers_never_answer_arp_for_a_vip": ["'--mangle-ip-s'", "'172.25.1.102'"],
}


def _outcomes(provider: LocalProvider) -> dict[str, dict]:
    """The last acceptance run's results by test name (without the lab's parameter)."""
    runs = sorted(provider.paths.artifacts.glob("*-acceptance"))
    report = json.loads((runs[-1] / "acceptance.json").read_text())
    return {test["test"].split("::")[1].split("[")[0]: test for test in report["tests"]}


def test_the_write_ups_errata_show_when_its_own_files_run(builds, tmp_path, monkeypatch):
    # An imported lab names no versions (the defaults hold); the suite's builds stand in for them
    # as an operator's HALAB_*_VERSION would on a host that cannot fetch the write-up's nginx.
    for name, version in SUITE_VERSIONS.items():
        monkeypatch.setenv(environment.version_variable(name), version)
    confs = [EXAMPLE / "keepalived-server3.conf", EXAMPLE / "keepalived-server4.conf"]
    result = mapping.build(
        confs, builds["keepalived"].binary, NAME, realserver_setup=EXAMPLE / "realserver-arptables.sh"
    )
    assert result.lab is not None
    lab = mapping.write(result, tmp_path / "writeup.yaml", LabPaths(NAME).imported)
    provider = LocalProvider(spec.load(tmp_path / "writeup.yaml"), progress=lambda _: None)
    try:
        provider.up()
        for director, conf in zip(("server3", "server4"), confs, strict=True):
            running = provider.paths.node_files(director) / "etc/keepalived/keepalived.conf"
            assert running.read_bytes() == conf.read_bytes(), f"{director} does not run {conf.name} verbatim"
        assert not session.acceptance(provider, destroy="never", args=["-q", "-kcluster"])
        outcomes = _outcomes(provider)
        for test, said in BROKEN.items():
            assert outcomes[test]["outcome"] == "failed", outcomes[test]
            for words in said:
                assert words in outcomes[test]["message"], outcomes[test]["message"]
        others = {name: test["outcome"] for name, test in outcomes.items() if name not in BROKEN}
        assert set(others.values()) <= {"passed", "skipped"}, others
        assert others["test_requests_through_each_vip_follow_the_scheduler"] == "passed"
        assert lab.nodes["server3"].state == "MASTER"
    finally:
        provider.down()
    assert_clean(NAME)
