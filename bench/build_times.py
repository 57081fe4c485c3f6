"""Benchmark (not a test): cold and warm `invoke build` times, measured in the same run.

Cold: an empty HALAB_HOME, so the sources are fetched, verified and compiled.
Warm: the same command again, which must find everything cached.

    .venv/bin/python bench/build_times.py [--keepalived 2.2.7] [--nginx 1.22.1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from halab.pins import version_variable

ROOT = Path(__file__).resolve().parent.parent


def timed_build(home: Path, versions: dict[str, str]) -> float:
    env = {
        **os.environ,
        "HALAB_HOME": str(home),
        **{version_variable(name): version for name, version in versions.items()},
    }
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "invoke", "build"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keepalived", default="2.2.7")
    parser.add_argument("--nginx", default="1.22.1")
    args = parser.parse_args()
    versions = {"keepalived": args.keepalived, "nginx": args.nginx}
    with tempfile.TemporaryDirectory(prefix="halab-bench-") as home:
        cold = timed_build(Path(home), versions)
        warm = timed_build(Path(home), versions)
    print(f"build keepalived {args.keepalived} + nginx {args.nginx} on {os.cpu_count()} cores")
    print(f"  cold (fetch, verify, compile): {cold:7.2f} s")
    print(f"  warm (all cached):             {warm:7.2f} s")
    print(f"  warm / cold:                   {warm / cold:7.3f}")


if __name__ == "__main__":
    main()
