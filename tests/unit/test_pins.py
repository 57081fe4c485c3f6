"""pins.yaml: the pinned versions and their sums."""

from __future__ import annotations

import pytest

from halab import pins
from halab.errors import SourceError


def test_unpinned_version_lists_the_pinned_ones():
    with pytest.raises(SourceError, match=r"nginx 1.17.9 is not pinned; pinned versions: 1.17.8, 1.17.10, 1.22.1"):
        pins.pin("nginx", "1.17.9")


def test_pins_cover_the_issue_s_versions_with_well_formed_sums():
    table = pins.pinned()
    assert set(table["keepalived"]) == {"2.0.6", "2.2.7", "2.2.8", "2.3.1"}
    assert set(table["nginx"]) == {"1.17.8", "1.17.10", "1.22.1"}
    sums = [p.sha256 for versions in table.values() for p in versions.values() if p.sha256]
    assert len(sums) == 6 and all(len(s) == 64 and int(s, 16) >= 0 for s in sums)
