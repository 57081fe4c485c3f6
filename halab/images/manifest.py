"""Packer's manifest (manifest.json): the images built, read defensively.

It is a file on disk that people edit, copy and truncate; a broken one must give a clear
error naming the file, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from halab.errors import ImageError


def builds(path: Path) -> list[dict[str, Any]]:
    """The manifest's build entries ([] when there is no manifest yet)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"{path} is not a readable Packer manifest ({exc}); move it aside and rebuild") from None
    entries = data.get("builds") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ImageError(f'{path} is not a Packer manifest: expected {{"builds": [{{...}}, ...]}}')
    return [_sane(entry) for entry in entries]


def _sane(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry whose nested parts have the types Packer writes (others read as empty)."""
    custom = entry.get("custom_data")
    files = entry.get("files")
    return {
        **entry,
        "custom_data": custom if isinstance(custom, dict) else {},
        "files": [f for f in files if isinstance(f, dict) and isinstance(f.get("name"), str)]
        if isinstance(files, list)
        else [],
    }
