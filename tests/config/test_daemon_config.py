"""Every shipped lab's rendered files pass their own daemon's config test, with the from-source builds.

keepalived -t must print nothing at all on every director's keepalived.conf; nginx -q -t
nothing either (no warning) on every real server's nginx.conf: DR, NAT and TUN alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from halab import configtest, paths, render, spec
from halab.spec import Lab
from tests.fixtures import needs_root

pytestmark = needs_root(
    "keepalived -t and nginx -t run in private namespaces (unshare), and compiling installs build dependencies"
)


@pytest.fixture(params=paths.shipped_labs(), ids=lambda path: path.stem)
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Lab, dict[str, dict[str, Path]]]:
    """A shipped lab, and its written files by file name, then by the node they are for."""
    lab = spec.load(request.param)
    files: dict[str, dict[str, Path]] = {}
    for path in render.write(render.render(lab), tmp_path):
        files.setdefault(path.name, {})[path.relative_to(tmp_path).parts[0]] = path
    return lab, files


def test_every_directors_keepalived_conf_passes_keepalived_t_silently(rendered, builds):
    lab, files = rendered
    assert sorted(files["keepalived.conf"]) == sorted(lab.role("director"))
    for conf in files["keepalived.conf"].values():
        verdict = configtest.keepalived(conf, builds["keepalived"].binary, configtest.interfaces(lab))
        assert verdict.ok, verdict.output


def test_every_real_servers_nginx_conf_passes_nginx_t(rendered, builds):
    lab, files = rendered
    assert sorted(files["nginx.conf"]) == sorted(lab.role("realserver"))
    for conf in files["nginx.conf"].values():
        verdict = configtest.nginx(conf, builds["nginx"].binary)
        assert verdict.ok, verdict.output


def test_the_write_ups_own_config_fails_keepalived_t(tmp_path, builds):
    """The checker can fail: the write-up's errata (weight in TCP_CHECK, garp 0) are caught."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        render.render(spec.load())["server3/etc/keepalived/keepalived.conf"]
        .replace("   smtp_alert\n", "   smtp_alert\n   vrrp_garp_interval 0\n")
        .replace("        weight 1\n        TCP_CHECK {\n", "        TCP_CHECK {\n        weight 1\n")
    )
    verdict = configtest.keepalived(conf, builds["keepalived"].binary)
    assert not verdict.ok
    assert "vrrp_garp_interval '0' is invalid" in verdict.output and "Unknown keyword 'weight'" in verdict.output


def test_a_broken_nginx_conf_fails_nginx_t(tmp_path, builds):
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render.render(spec.load())["server1/usr/local/nginx/conf/nginx.conf"].replace(
            "user  nginx nginx;", "user  nosuchuser;"
        )
    )
    verdict = configtest.nginx(conf, builds["nginx"].binary)
    assert not verdict.ok and "nosuchuser" in verdict.output
