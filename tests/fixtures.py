"""Helpers shared by test modules (fixtures proper live in conftest.py)."""

from __future__ import annotations

import os

import pytest

from halab.prove.acceptance import SUITE_VERSIONS

__all__ = ["SUITE_VERSIONS", "WRITE_UP_NGINX_FLAGS", "needs_root", "probe_record"]

# The write-up's nginx configure flags: what the build script must pass.
WRITE_UP_NGINX_FLAGS = (
    "--prefix=/usr/local/nginx --pid-path=/var/run/nginx/nginx.pid --lock-path=/var/lock/nginx.lock "
    "--error-log-path=/var/log/nginx/error.log --http-log-path=/var/log/nginx/access.log "
    "--with-http_gzip_static_module --http-client-body-temp-path=/var/temp/nginx/client "
    "--http-proxy-temp-path=/var/temp/nginx/proxy --http-fastcgi-temp-path=/var/temp/nginx/fastcgi "
    "--http-uwsgi-temp-path=/var/temp/nginx/uwsgi --http-scgi-temp-path=/var/temp/nginx/scgi "
    "--without-http_rewrite_module"
)


def needs_root(why: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"needs root: {why}")


def probe_record(sent: float, ok: bool, target: str = "vip", mac: str = "m3", latency: float = 0.01) -> dict:
    """One request as the agent records it, for judging and reporting without a lab."""
    return {
        "sent": sent,
        "done": sent + latency,
        "ok": ok,
        "target": target,
        "mac": mac,
        **({"page": "<h1>server1's page</h1>"} if ok else {"error": "TimeoutError: timed out"}),
    }
