"""Benchmark (not a test): cold and warm `invoke build` times, measured in the same run.

Cold: an empty HALAB_HOME holding only the verified tarballs, so `invoke build` unpacks,
configures and compiles. Warm: the same command again, which must find everything built.
The tarballs come from this checkout's source cache, so the benchmark runs offline; a
tarball not cached yet is fetched into that cache first (the one step that needs the
network, timed on its own and said before it starts).

    .venv/bin/python bench/build_times.py [--keepalived 2.2.7] [--nginx 1.22.1] [--rounds 3]
    .venv/bin/python bench/build_times.py --quick     # one round: what CI runs to keep it working
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from halab import environment, paths, pins, sources
from halab.errors import HalabError

# The longest one `invoke build` may take before the benchmark gives up (2 cores compile
# both in about 30 s; a host running other work may take several times that).
BUILD_TIMEOUT = 900.0


def cached_tarballs(versions: dict[str, str]) -> list[Path]:
    """The verified tarball of every version, from this checkout's cache; fetching (network)
    only the ones missing, and saying so first."""
    tarballs = []
    for name, version in versions.items():
        pin = pins.pin(name, version)
        if sources.cached(pin).exists():
            print(f"{pin.filename}: from the cache ({paths.sources()}), offline")
        else:
            print(f"{pin.filename}: not cached yet, fetching it (needs the network, once)")
            started = time.monotonic()
            sources.fetch(pin, progress=lambda _: None)
            print(f"  fetched and verified in {time.monotonic() - started:.2f} s (not part of the build times)")
        tarballs.append(sources.cached(pin))
    return tarballs


def timed_build(home: Path, versions: dict[str, str]) -> float:
    """Seconds one `invoke build` takes with HALAB_HOME=home; SystemExit with its output if it fails."""
    env = {
        **os.environ,
        "HALAB_HOME": str(home),
        **{environment.version_variable(name): version for name, version in versions.items()},
    }
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "build"],
            cwd=paths.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"`invoke build` took over {BUILD_TIMEOUT:.0f} s; benchmark stopped") from None
    if result.returncode != 0:
        raise SystemExit(f"`invoke build` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return time.monotonic() - started


def cold_and_warm(tarballs: list[Path], versions: dict[str, str]) -> tuple[float, float]:
    """One round: a fresh state directory seeded with the tarballs, built twice."""
    with tempfile.TemporaryDirectory(prefix="halab-bench-") as directory:
        home = Path(directory)
        cache = home / paths.sources().relative_to(paths.home())
        cache.mkdir(parents=True)
        for tarball in tarballs:
            shutil.copy2(tarball, cache / tarball.name)
        return timed_build(home, versions), timed_build(home, versions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keepalived", default="2.2.7")
    parser.add_argument("--nginx", default="1.22.1")
    parser.add_argument("--rounds", type=int, default=3, help="cold + warm builds per round (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round: checks the benchmark still works")
    args = parser.parse_args()
    rounds = 1 if args.quick else max(args.rounds, 1)
    versions = {"keepalived": args.keepalived, "nginx": args.nginx}
    try:
        tarballs = cached_tarballs(versions)
    except HalabError as exc:
        raise SystemExit(f"cannot get the sources: {exc}") from None
    times = []
    for number in range(1, rounds + 1):
        cold, warm = cold_and_warm(tarballs, versions)
        print(f"  round {number}/{rounds}: cold {cold:7.2f} s, warm {warm:6.2f} s")
        times.append((cold, warm))
    cold = statistics.median(c for c, _ in times)
    warm = statistics.median(w for _, w in times)
    print(f"build keepalived {args.keepalived} + nginx {args.nginx} on {os.cpu_count()} cores, median of {rounds}")
    print(f"  cold (unpack, configure, compile): {cold:7.2f} s")
    print(f"  warm (all built):                  {warm:7.2f} s")
    print(f"  warm / cold:                       {warm / cold:7.3f}")


if __name__ == "__main__":
    main()
