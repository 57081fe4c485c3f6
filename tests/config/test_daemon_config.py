"""Every rendered file passes its own daemon's config test, with the from-source builds.

keepalived -t must print nothing at all; nginx -q -t nothing either (no warning).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from halab import configtest, render, spec
from tests.fixtures import needs_root

LABS = Path(__file__).resolve().parents[2] / "labs"
EXAMPLES = ["seed", "dual", "unicast", "fast"]

pytestmark = needs_root(
    "keepalived -t and nginx -t run in private namespaces (unshare), and compiling installs build dependencies"
)


@pytest.fixture(params=EXAMPLES)
def rendered(request, tmp_path):
    lab = spec.load(LABS / f"{request.param}.yaml")
    return lab, render.write(render.render(lab), tmp_path)


def test_keepalived_conf_passes_keepalived_t_silently(rendered, builds):
    lab, written = rendered
    confs = [p for p in written if p.name == "keepalived.conf"]
    assert len(confs) == 2
    for conf in confs:
        verdict = configtest.keepalived(conf, builds["keepalived"].binary, configtest.interfaces(lab))
        assert verdict.ok, verdict.output


def test_nginx_conf_passes_nginx_t(rendered, builds):
    _, written = rendered
    confs = [p for p in written if p.name == "nginx.conf"]
    assert len(confs) == 2
    for conf in confs:
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
