"""Benchmark (not a test): the local lab's up/down times, memory, and throughput via the VIP.

Measured in one run, with warm builds: `lab.up` wall time of the seed lab (as
configured, VRRP converged), `lab.down` time, the lab's peak memory (sum of the guests'
resident memory, sampled during the load), and requests per second from the client
through the VIP against the same load sent straight to one real server.

    .venv/bin/python bench/lab_times.py [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

from halab import paths, spec
from halab.providers.local.processes import processes
from halab.providers.local.provider import LocalProvider


def resident_mib(provider: LocalProvider) -> float:
    """Resident memory of every host process of the lab's guests."""
    total = 0
    for pid in processes(f"umid={provider.paths.guest_tag()}"):
        try:
            match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        except OSError:
            continue
        total += int(match[1]) if match else 0
    return total / 1024


def rate(provider: LocalProvider, url: str, count: int) -> float:
    """Requests per second of `count` sequential curl requests from the client (bounded)."""
    command = (
        f"s=$(date +%s.%N); for i in $(seq {count}); do curl -s -o /dev/null -m 2 {url}; done; "
        'e=$(date +%s.%N); echo "$s $e"'
    )
    start, end = map(float, provider.remote.run("client", command, timeout=count * 2 + 30).stdout.split())
    return count / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    os.environ.setdefault("HALAB_NGINX_VERSION", "1.22.1")
    lab = spec.load(paths.DEFAULT_LAB)
    provider = LocalProvider(lab, progress=lambda _: None)
    provider.down()
    started = time.monotonic()
    provider.up()
    up_seconds = time.monotonic() - started
    try:
        direct = rate(provider, "http://172.25.1.101/", args.requests)
        via_vip = rate(provider, "http://172.25.1.100/", args.requests)
        peak = resident_mib(provider)
    finally:
        started = time.monotonic()
        provider.down()
        down_seconds = time.monotonic() - started
    print(f"local lab {lab.name!r}, {len(lab.nodes)} user-mode Linux guests, {os.cpu_count()} cores, warm builds")
    print(f"  lab.up (booted, VRRP converged): {up_seconds:6.2f} s   (target <= 15 s)")
    print(f"  lab.down:                        {down_seconds:6.2f} s   (target <= 5 s)")
    print(f"  resident memory of the guests:   {peak:6.0f} MiB (target < 2048 MiB)")
    print(f"  requests/s direct to server1:    {direct:6.1f}")
    print(f"  requests/s through the VIP:      {via_vip:6.1f}   (ratio VIP/direct {via_vip / direct:.2f})")


if __name__ == "__main__":
    main()
