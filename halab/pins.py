"""The pinned upstream sources (pins.yaml): which versions exist, where, and their sha256.

Plain data, read by the lab file's rules (only pinned versions are valid) and by the
fetch chain (sources.py), so validating a lab never touches the build stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from halab import paths
from halab.errors import SourceError


@dataclass(frozen=True)
class Pin:
    """One upstream tarball: name, version, where it lives, and its sha256 (None: unverifiable)."""

    name: str
    version: str
    sha256: str | None
    urls: tuple[str, ...]
    debian_source: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


def pinned(pins_file: Path = paths.PINS) -> dict[str, dict[str, Pin]]:
    """Every pin, by name then version."""
    data = yaml.safe_load(pins_file.read_text())
    return {
        name: {
            str(version): Pin(
                name, str(version), sha, tuple(u.format(version=version) for u in entry["urls"]), entry["debian_source"]
            )
            for version, sha in entry["versions"].items()
        }
        for name, entry in data.items()
    }


def pin(name: str, version: str, pins_file: Path = paths.PINS) -> Pin:
    """The pin of one version, or an error listing the pinned ones."""
    table = pinned(pins_file)
    if name not in table:
        raise SourceError(f"no source named {name!r}; pinned sources: {', '.join(table)}")
    if version not in table[name]:
        raise SourceError(
            f"{name} {version} is not pinned; pinned versions: {', '.join(table[name])} "
            f"(add it with its sha256 to {pins_file.name})"
        )
    return table[name][version]
