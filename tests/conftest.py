"""Shared fixtures. Fixtures start nothing at import; whatever one starts, it stops."""

from __future__ import annotations

import os

import pytest

from halab import build, sources

# The versions the suite compiles and runs. The lab's default nginx (1.17.8, the
# write-up's) exists only on nginx.org, which CI machines cannot reach; the Debian
# source archive has keepalived 2.2.7 and nginx 1.22.1, byte-identical to upstream.
TEST_VERSIONS = {"keepalived": "2.2.7", "nginx": "1.22.1"}


def needs_root(why: str):
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"needs root: {why}")


@pytest.fixture(scope="session")
def builds() -> dict[str, build.Build]:
    """From-source keepalived and nginx (compiled once, then cached across runs)."""
    return {name: build.ensure(sources.pin(name, version)) for name, version in TEST_VERSIONS.items()}
