"""Real builds: keepalived 2.2.7 and nginx 1.22.1 from verified source, cached after."""

from __future__ import annotations

import json
import subprocess

from halab import build, pins, sources
from tests.fixtures import SUITE_VERSIONS, WRITE_UP_NGINX_FLAGS, needs_root

pytestmark = needs_root("compiling installs the build dependencies with apt-get")


def _output(*command) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def test_keepalived_reports_its_pinned_version_and_the_write_up_s_prefix(builds):
    text = _output(str(builds["keepalived"].binary), "--version")
    assert f"Keepalived v{SUITE_VERSIONS['keepalived']} " in text
    assert "configure options: --prefix=/usr/local/keepalived" in text
    assert "LVS" in text and "VRRP" in text


def test_nginx_reports_its_pinned_version_and_the_write_up_s_flags(builds):
    text = _output(str(builds["nginx"].binary), "-V")
    assert f"nginx version: nginx/{SUITE_VERSIONS['nginx']}" in text
    assert f"configure arguments: {WRITE_UP_NGINX_FLAGS}" in text


def test_a_second_build_does_no_work(builds):
    said: list[str] = []
    again = build.ensure(pins.pin("nginx", SUITE_VERSIONS["nginx"]), progress=said.append)
    assert not again.compiled and again.root == builds["nginx"].root
    assert said == [f"nginx {SUITE_VERSIONS['nginx']}: up to date, nothing to do ({again.root})"]


def test_the_build_records_what_it_was_built_from(builds):
    record = json.loads((builds["keepalived"].root / "build.json").read_text())
    assert record["sha256"] == pins.pin("keepalived", SUITE_VERSIONS["keepalived"]).sha256
    assert record["key"] == builds["keepalived"].key and "--prefix=/usr/local/keepalived" in record["plan"]
    assert not list(builds["keepalived"].root.parent.glob("*.partial"))


def test_the_build_script_is_idempotent_on_its_own(builds, tmp_path):
    """Run directly, as Packer and Vagrant do, into an already-built tree: nothing to do."""
    pin = pins.pin("nginx", SUITE_VERSIONS["nginx"])
    tarball = sources.fetch(pin, progress=lambda _: None)
    text = _output("sh", str(build.script("nginx")), str(tarball), str(builds["nginx"].root))
    assert (
        text.strip()
        == f"==> nginx {pin.version} already built into {builds['nginx'].root}/usr/local/nginx; nothing to do"
    )
