"""The local lab whatever the host's arptables alternative: legacy or nft.

Most hosts have iptables installed, which makes `arptables` the nft variant; the guests'
kernel has no nf_tables ARP family, so they must run arptables-legacy explicitly. The
rest of the suite runs with the host's own setting (./bootstrap installs iptables: nft);
this module boots a lab with the other variant selected, checks the real servers' role
and runs one acceptance pass, then restores the host's setting.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from halab import spec
from halab.prove import session
from halab.providers.local.provider import LocalProvider
from tests.fixtures import assert_clean, lab_file, needs_root

pytestmark = [needs_root("switches the host's arptables alternative and boots a lab"), pytest.mark.root]
VARIANTS = {"legacy": Path("/usr/sbin/arptables-legacy"), "nft": Path("/usr/sbin/arptables-nft")}
ALTERNATIVE = Path("/etc/alternatives/arptables")


def alternatives(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["update-alternatives", *args], capture_output=True, text=True, timeout=30, check=True)


@pytest.fixture
def other_variant() -> Iterator[str]:
    """Select the variant the host does not use now; restore the host's setting afterwards."""
    if not all(path.exists() for path in VARIANTS.values()):
        pytest.skip("needs both arptables variants: arptables (legacy) and iptables (nft); ./bootstrap installs both")
    current = ALTERNATIVE.readlink()
    auto = "auto mode" in alternatives("--display", "arptables").stdout
    other = next(name for name, path in VARIANTS.items() if path != current)
    alternatives("--set", "arptables", str(VARIANTS[other]))
    try:
        yield other
    finally:
        if auto:
            alternatives("--auto", "arptables")
        else:
            alternatives("--set", "arptables", str(current))
    assert ALTERNATIVE.readlink() == current


def test_the_lab_works_with_the_other_arptables_variant(builds, other_variant, tmp_path):
    file = lab_file(tmp_path, "t-arptables")
    provider = LocalProvider(spec.load(file), progress=lambda _: None)
    try:
        provider.up()  # up means every real server's role was verified: VIP on lo, ARP suppressed, nginx answering
        rules = provider.remote.check("server1", "arptables -L INPUT -n")
        assert "172.25.1.100" in rules
        assert session.acceptance(provider, destroy="never", args=["-q"])
    finally:
        provider.down()
    assert_clean("t-arptables")
