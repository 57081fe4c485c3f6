"""keepalived's own numbers: the health checks it runs, every default resolved.

Sent SIGUSR1, keepalived's checker process writes the configuration it is running to
/tmp/keepalived_check.data (check_print.c): per real server its delay loop, connect
timeout, retries and delay before retry, whether the lab file set them or keepalived's
defaults apply. The failover bounds of a real-server fault are judged with these, not
with defaults re-typed here: a lab file that leaves `retry` unset gets exactly what the
daemon does, and a file and a daemon that disagree are said to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from halab.providers.base import Provider
from halab.spec import Lab

DUMP = "/tmp/keepalived_check.data"
# Ask the oldest keepalived (the parent, which passes the signal to its checker process)
# for the dump, and wait up to 5 s for it.
COMMAND = (
    f"rm -f {DUMP}; kill -USR1 $(pgrep -o -x keepalived) || exit 1; "
    f"for i in $(seq 50); do [ -s {DUMP} ] && break; sleep 0.1; done; sleep 0.2; cat {DUMP}"
)
# " [192.168.0.200]:tcp:80 -> [192.168.0.221]:tcp:80" opens one checker's block.
CHECKER = re.compile(r"^ \[(?P<vip>[^\]]+)\]:\w+:(?P<port>\d+) -> \[(?P<server>[^\]]+)\]:\w+:\d+$")
# "   Retries = 3", "   Delay loop = 6000000 us", "   Keepalive method = HTTP_GET, http protocol 1.0"
FIELD = re.compile(r"^\s+(?P<key>[A-Za-z][A-Za-z ]*?) = (?P<value>[^, ]+)")


@dataclass(frozen=True)
class Check:
    """One health checker as keepalived runs it (seconds)."""

    vip: str
    server: str
    method: str
    delay_loop: float
    connect_timeout: float
    retries: int
    delay_before_retry: float

    def words(self) -> str:
        return (
            f"{self.method} delay_loop {self.delay_loop:g} s, connect_timeout {self.connect_timeout:g} s, "
            f"{self.retries} retries {self.delay_before_retry:g} s apart"
        )


def parse(text: str) -> list[Check]:
    """Every checker block of a keepalived_check.data dump."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        if opened := CHECKER.match(line):
            blocks.append({"vip": opened["vip"], "server": opened["server"]})
        elif blocks and (field := FIELD.match(line)):
            blocks[-1].setdefault(field["key"], field["value"])
    return [_check(block) for block in blocks if "Keepalive method" in block]


def _check(block: dict[str, str]) -> Check:
    def seconds(key: str) -> float:  # "6000000 us" in the dump's checker section
        return int(block[key]) / 1e6

    return Check(
        block["vip"],
        block["server"],
        block["Keepalive method"],
        seconds("Delay loop"),
        float(block["Timeout"]),
        int(block["Retries"]),
        seconds("Delay before retry"),
    )


def read(provider: Provider) -> list[Check]:
    """The checks the first VIP's MASTER runs; empty when it cannot tell (no dump)."""
    master = provider.lab.masters()[str(provider.lab.vips[0])]
    result = provider.remote.run(master, COMMAND, timeout=20)
    return parse(result.stdout) if result.returncode == 0 else []


def applied(lab: Lab, checks: list[Check]) -> tuple[Lab, list[str]]:
    """The lab with its first service's check timings as keepalived runs them, and each way the
    file's (or its defaults') differ from the daemon's; the lab unchanged when no check was read."""
    service = lab.virtual_services[0]
    mine = [c for c in checks if c.vip == str(service.vip)]
    if not mine:
        return lab, []
    ran, check = mine[0], service.health_check
    planned = {
        "delay_loop": check.delay_loop,
        "connect_timeout": check.connect_timeout,
        "retry": check.retries,
        "delay_before_retry": check.retry_delay,
    }
    running = {
        "delay_loop": ran.delay_loop,
        "connect_timeout": ran.connect_timeout,
        "retry": ran.retries,
        "delay_before_retry": ran.delay_before_retry,
    }
    differ = [
        f"health_check.{key}: the lab says {planned[key]:g}, keepalived runs {running[key]:g}"
        for key in planned
        if planned[key] != running[key]
    ]
    if not differ:
        return lab, []
    whole = {key: round(value) if key != "connect_timeout" else int(value) for key, value in running.items()}
    updated = service.model_copy(update={"health_check": check.model_copy(update=whole)})
    return lab.model_copy(update={"virtual_services": (updated, *lab.virtual_services[1:])}), differ
