"""Packer's manifest (manifest.json): the images built, read defensively.

It is a file on disk that people edit, copy and truncate; a broken one must give a clear
error naming the file, never a traceback. What the templates record in each build's
custom_data (packer/build.pkr.hcl) becomes AMI tags and the family ami.prune retires
from, so each field has the form the templates write, or the manifest is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from halab.errors import ImageError, shown

_SHA256 = r"[0-9a-f]{64}"
_VERSION = r"[0-9]{1,4}(?:\.[0-9]{1,4}){1,3}"
# custom_data's fields and their forms; the os is also one of packer.oses() (ami checks it,
# as only it needs it); a field the templates do not write is ignored.
CUSTOM_DATA = {
    "os": ("an OS name like rocky-9", r"[a-z]+-[0-9]{1,2}"),
    "keepalived_version": ("a version like 2.2.7", _VERSION),
    "nginx_version": ("a version like 1.22.1", _VERSION),
    "keepalived_sha256": ("64 hex digits, or empty", rf"(?:{_SHA256})?"),
    "nginx_sha256": ("64 hex digits, or empty", rf"(?:{_SHA256})?"),
    "git_revision": ("a commit (hex, -dirty when uncommitted) or unknown", r"[0-9a-f]{4,64}(?:-dirty)?|unknown"),
    "input_hash": ("64 hex digits", _SHA256),
    "build_inputs": ("64 hex digits", _SHA256),
}


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
    return [_sane(entry, path, number) for number, entry in enumerate(entries)]


def _sane(entry: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    """An entry whose nested parts have the types Packer writes (others read as empty), and
    whose custom_data fields have the forms the templates write (others refuse the manifest)."""
    custom = entry.get("custom_data")
    custom = custom if isinstance(custom, dict) else {}
    for field, (allowed, pattern) in CUSTOM_DATA.items():
        value = custom.get(field)
        if value is not None and not (isinstance(value, str) and re.fullmatch(pattern, value)):
            raise ImageError(
                f"{path}: builds[{number}].custom_data.{field} is {shown(json.dumps(value))}, not {allowed}; "
                "was this manifest edited by hand?"
            )
    files = entry.get("files")
    return {
        **entry,
        "custom_data": custom,
        "files": [f for f in files if isinstance(f, dict) and isinstance(f.get("name"), str)]
        if isinstance(files, list)
        else [],
    }
