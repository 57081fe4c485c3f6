"""What the tests proved, kept where the publish step can find it.

Every `test.acceptance` / `test.failover` run leaves a record: the lab, pass or fail, and
the input hash each image OS would have with exactly the sources, provision scripts and
templates that were tested (halab.image.input_hash). `ami.publish` refuses an image whose
input hash has no passing acceptance record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from halab import image, paths


def directory() -> Path:
    return paths.home() / "evidence"


def record(kind: str, lab: str, passed: bool, versions: dict[str, str], report: Path) -> Path:
    """Write one run's record; its name sorts by time."""
    data = {
        "kind": kind, "lab": lab, "passed": passed, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions, "report": str(report),
        "input_hashes": {os_name: image.input_hash(os_name, versions) for os_name in image.oses()},
    }
    directory().mkdir(parents=True, exist_ok=True)
    path = directory() / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{kind}-{lab}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def passing(input_hash: str, kind: str = "acceptance") -> list[dict]:
    """Passing records of kind whose tested inputs are those of the image with input_hash, newest first."""
    found = []
    for path in sorted(directory().glob("*.json"), reverse=True) if directory().exists() else []:
        data = json.loads(path.read_text())
        if data.get("kind") == kind and data.get("passed") and input_hash in data.get("input_hashes", {}).values():
            found.append(data)
    return found
