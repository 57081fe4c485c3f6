"""Benchmark (not a test): what each LVS forwarding method costs here, DR, TUN and NAT in one run.

For each shipped lab (seed: DR, tun.yaml, nat.yaml), renamed <prefix><method> (bench-dr...), on this host
with warm builds: boot it, then measure requests per second through the VIP and straight
to one real server, with the same load tool (a Python loop on the node, a new connection
per request, --workers at a time, --requests in all, each bounded to 2 s), then tear it
down. Straight means from the client, except with NAT: the real servers' subnet is behind
the directors and the client has no route there, so the baseline runs on the MASTER
(which is on both networks). A lab that fails a request stops the benchmark with a
message and a non-zero exit: a rate of failures is not a number worth printing.

    .venv/bin/python bench/methods.py [--requests 2000] [--workers 4]
    .venv/bin/python bench/methods.py --quick     # 100 requests: what CI runs to keep it working
"""

from __future__ import annotations

import argparse
import json
import os
import shlex

from halab import build, paths, spec
from halab.errors import HalabError
from halab.providers.local.provider import LocalProvider
from halab.remote import Remote
from halab.spec import Lab

QUICK_REQUESTS = 100
LABS = {"DR": "seed.yaml", "TUN": "tun.yaml", "NAT": "nat.yaml"}

# The load tool, run on a node with its own python3: `workers` threads share `count` requests
# (HTTP/1.0 GET, a new connection each, 2 s bound); prints {"seconds", "done", "failed"}.
LOAD = """
import json, socket, sys, threading, time
host, port, count, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lock, left, tally = threading.Lock(), [count], {"done": 0, "failed": 0}
def one():
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.settimeout(2)
        conn.sendall(b"GET / HTTP/1.0\\r\\nHost: bench\\r\\n\\r\\n")
        while conn.recv(65536):
            pass
def worker():
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        try:
            one()
            key = "done"
        except OSError:
            key = "failed"
        with lock:
            tally[key] += 1
start = time.time()
threads = [threading.Thread(target=worker) for _ in range(workers)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(dict(tally, seconds=time.time() - start)))
"""


def rate(remote: Remote, node: str, host: str, port: int, count: int, workers: int) -> float:
    """Requests per second of `count` requests from node to host:port; SystemExit when any
    failed or the load could not run, as the lab is then not serving."""
    command = f"python3 -c {shlex.quote(LOAD)} {host} {port} {count} {workers}"
    result = remote.run(node, command, timeout=count * 2 / workers + 60)
    try:
        tally = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"the lab is not serving: {node} could not run the load to {host}: {result.stderr}") from None
    if tally["failed"]:
        raise SystemExit(f"the lab is not serving: {tally['failed']} of {count} requests from {node} to {host} failed")
    return count / tally["seconds"]


def bench_lab(method: str, prefix: str) -> Lab:
    """The method's shipped lab under its benchmark name, held to the lab-name rule (the name
    becomes paths and namespaces)."""
    name = f"{prefix}{method.lower()}"
    if not paths.NAME.fullmatch(name):
        raise SystemExit(f"--prefix {prefix!r} makes the lab name {name!r}; allowed: {paths.NAME_RULE}")
    return spec.load(paths.LABS / LABS[method]).model_copy(update={"name": name})


def measure(lab: Lab, count: int, workers: int) -> tuple[str, float, float]:
    """(where the baseline ran, requests/s direct, requests/s via the VIP) on a lab this boots."""
    provider = LocalProvider(lab, progress=lambda _: None)
    if provider.running():
        raise SystemExit(f"lab {lab.name!r} is already up; the benchmark boots its own: `invoke lab.down` first")
    try:
        provider.up()
    except HalabError as exc:
        raise SystemExit(f"cannot boot the lab {lab.name!r}: {exc}") from None
    try:
        service = lab.virtual_services[0]
        server = lab.nodes[next(iter(service.real_servers))]
        client = lab.client
        origin = lab.masters()[str(service.vip)] if lab.nat else client
        direct = rate(provider.remote, origin, str(server.address), service.port, count, workers)
        via_vip = rate(provider.remote, client, str(service.vip), service.port, count, workers)
        return origin, direct, via_vip
    finally:
        provider.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement (default 2000)")
    parser.add_argument("--workers", type=int, default=4, help="connections at a time (default 4)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS} requests: checks the benchmark works")
    parser.add_argument("--prefix", default="bench-", help="the labs' names: PREFIX + dr|tun|nat (default bench-)")
    args = parser.parse_args()
    count = QUICK_REQUESTS if args.quick else args.requests
    os.environ.setdefault("HALAB_NGINX_VERSION", "1.22.1")  # the labs' 1.17.8 is upstream-only
    labs = [bench_lab(method, args.prefix) for method in LABS]
    try:
        build.ensure_all(labs[0].versions.model_dump(), progress=lambda _: None)
    except HalabError as exc:
        raise SystemExit(f"cannot build: {exc}") from None
    print(f"forwarding methods on the local lab: {os.cpu_count()} cores, {count} requests, {args.workers} at a time")
    print(f"  {'method':<7}{'direct req/s':>13}{'via VIP req/s':>15}{'VIP/direct':>12}  direct from")
    for method, lab in zip(LABS, labs, strict=True):
        origin, direct, via_vip = measure(lab, count, args.workers)
        print(f"  {method:<7}{direct:13.1f}{via_vip:15.1f}{via_vip / direct:12.2f}  {origin}")


if __name__ == "__main__":
    main()
