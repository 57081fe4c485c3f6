"""Benchmark (not a test): the local lab's up/down times, memory, and throughput via the VIP.

Measured in one run, with warm builds (compiled first if missing): `lab.up` wall time
(booted, VRRP converged), `lab.down` time, the lab's peak memory (sum of the guests'
resident memory, sampled during the load), and requests per second from the client
through the VIP against the same load sent straight to one real server (the baseline).
A lab that does not serve (a request that fails) stops the benchmark with a message and
a non-zero exit: a rate of failures is not a number worth printing.

    .venv/bin/python bench/lab_times.py [--lab FILE] [--requests 400]
    .venv/bin/python bench/lab_times.py --quick     # 40 requests: what CI runs to keep it working
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

from halab import build, paths, spec
from halab.errors import HalabError
from halab.providers.local.processes import processes
from halab.providers.local.provider import LocalProvider
from halab.remote import Remote

QUICK_REQUESTS = 40


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


def rate(remote: Remote, client: str, url: str, count: int) -> float:
    """Requests per second of `count` sequential curl requests from the client (each bounded to
    2 s); SystemExit when any failed, as the lab is then not serving."""
    command = (
        f"f=0; s=$(date +%s.%N); for i in $(seq {count}); do curl -sf -o /dev/null -m 2 {url} || f=$((f+1)); done; "
        'e=$(date +%s.%N); echo "$s $e $f"'
    )
    result = remote.run(client, command, timeout=count * 2 + 30)
    fields = result.stdout.split()
    if result.returncode != 0 or len(fields) != 3:
        raise SystemExit(f"the lab is not serving: {client} could not run the requests to {url}: {result.stderr}")
    start, end, failed = float(fields[0]), float(fields[1]), int(fields[2])
    if failed:
        raise SystemExit(f"the lab is not serving: {failed} of {count} requests from {client} to {url} failed")
    return count / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", default=str(paths.DEFAULT_LAB), help="lab file (default: the seed lab)")
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (default 400)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS} requests: checks the benchmark works")
    args = parser.parse_args()
    count = QUICK_REQUESTS if args.quick else args.requests
    os.environ.setdefault("HALAB_NGINX_VERSION", "1.22.1")  # the seed's 1.17.8 is upstream-only
    try:
        lab = spec.load(args.lab)
        provider = LocalProvider(lab, progress=lambda _: None)
        if provider.running():
            raise SystemExit(f"lab {lab.name!r} is already up; the benchmark boots its own: `invoke lab.down` first")
        build.ensure_all(lab.versions.model_dump(), progress=lambda _: None)
        started = time.monotonic()
        provider.up()
    except HalabError as exc:
        raise SystemExit(f"cannot boot the lab: {exc}") from None
    up_seconds = time.monotonic() - started
    client = lab.client
    service = lab.virtual_services[0]
    server = next(iter(service.real_servers))
    try:
        direct = rate(provider.remote, client, f"http://{lab.nodes[server].address}:{service.port}/", count)
        via_vip = rate(provider.remote, client, f"http://{service.vip}:{service.port}/", count)
        peak = resident_mib(provider)
    finally:
        started = time.monotonic()
        provider.down()
        down_seconds = time.monotonic() - started
    print(f"local lab {lab.name!r}, {len(lab.nodes)} user-mode Linux guests, {os.cpu_count()} cores, warm builds")
    print(f"  lab.up (booted, VRRP converged): {up_seconds:6.2f} s   (target <= 15 s)")
    print(f"  lab.down:                        {down_seconds:6.2f} s   (target <= 5 s)")
    print(f"  resident memory of the guests:   {peak:6.0f} MiB (target < 2048 MiB)")
    print(f"  requests/s direct to {server + ':':<12}{direct:6.1f}   (the baseline; {count} requests each)")
    print(f"  requests/s through the VIP:      {via_vip:6.1f}   (ratio VIP/direct {via_vip / direct:.2f})")


if __name__ == "__main__":
    main()
