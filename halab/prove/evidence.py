"""What the tests proved, kept where the publish step can find it.

Every `test.acceptance` / `test.failover` run leaves a record: the lab, pass or fail, and
the digest of what decides the daemons it ran (the pins and provision scripts,
halab.build.inputs_digest). Every image records the same digest in Packer's manifest;
`ami.publish` refuses an image whose digest has no passing acceptance record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from halab import build, paths


def record(
    kind: str, lab: str, passed: bool, versions: dict[str, str], report: Path, substitutions: list[str] | None = None
) -> Path:
    """Write one run's record (the versions it actually ran, and any the run put in place of
    the lab's defaults); its name sorts by time."""
    data = {
        "kind": kind,
        "lab": lab,
        "passed": passed,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions,
        "substitutions": substitutions or [],
        "report": str(report),
        "build_inputs": build.inputs_digest(versions),
    }
    paths.evidence().mkdir(parents=True, exist_ok=True)
    now = time.time()  # to the microsecond: two runs within a second each keep their own record, in order
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now % 1 * 1e6):06d}-{kind}-{lab}"
    path = paths.evidence() / f"{stamp}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def passing(build_inputs: str, kind: str = "acceptance") -> list[dict]:
    """Passing records of kind that ran daemons built from build_inputs, newest first."""
    found = []
    for path in sorted(paths.evidence().glob("*.json"), reverse=True) if paths.evidence().exists() else []:
        data = json.loads(path.read_text())
        if data.get("kind") == kind and data.get("passed") and data.get("build_inputs") == build_inputs:
            found.append(data)
    return found
