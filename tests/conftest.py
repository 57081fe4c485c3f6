"""Shared fixtures. Fixtures start nothing at import; whatever one starts, it stops."""

from __future__ import annotations

import pytest

from halab import build, pins
from tests.fixtures import SUITE_VERSIONS


@pytest.fixture(scope="session")
def builds() -> dict[str, build.Build]:
    """From-source keepalived and nginx (compiled once, then cached across runs)."""
    return {name: build.ensure(pins.pin(name, version)) for name, version in SUITE_VERSIONS.items()}
