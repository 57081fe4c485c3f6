"""Helpers shared by test modules (fixtures proper live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from halab import paths
from halab.paths import LabPaths
from halab.prove import verdicts
from halab.prove.acceptance import SUITE_VERSIONS
from halab.prove.results import Margin, PhaseResult
from halab.prove.scenarios import Phase
from halab.providers.base import Progress, Provider, Requirement
from halab.providers.faults import Fault
from halab.providers.local import netns
from halab.providers.local.processes import processes
from halab.providers.local.provider import LocalProvider
from halab.spec import Lab

__all__ = [
    "SUITE_VERSIONS",
    "WRITE_UP_NGINX_FLAGS",
    "MemoryProvider",
    "assert_clean",
    "invoke",
    "invoke_bare",
    "lab_file",
    "needs_root",
    "probe_record",
    "requests_through_vip",
    "task_environment",
]

# The write-up's nginx configure flags: what the build script must pass.
WRITE_UP_NGINX_FLAGS = (
    "--prefix=/usr/local/nginx --pid-path=/var/run/nginx/nginx.pid --lock-path=/var/lock/nginx.lock "
    "--error-log-path=/var/log/nginx/error.log --http-log-path=/var/log/nginx/access.log "
    "--with-http_gzip_static_module --http-client-body-temp-path=/var/temp/nginx/client "
    "--http-proxy-temp-path=/var/temp/nginx/proxy --http-fastcgi-temp-path=/var/temp/nginx/fastcgi "
    "--http-uwsgi-temp-path=/var/temp/nginx/uwsgi --http-scgi-temp-path=/var/temp/nginx/scgi "
    "--without-http_rewrite_module"
)


def needs_root(why: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"needs root: {why}")


def probe_record(sent: float, ok: bool, target: str = "vip", mac: str = "m3", latency: float = 0.01) -> dict:
    """One request as the agent records it, for judging and reporting without a lab."""
    return {
        "sent": sent,
        "done": sent + latency,
        "ok": ok,
        "target": target,
        "mac": mac,
        **({"page": "<h1>server1's page</h1>"} if ok else {"error": "TimeoutError: timed out"}),
    }


class MemoryProvider(Provider):
    """A provider whose machinery is a log of what was asked of it: for testing the shared
    lifecycle (base.Provider) and what sits on top of it without booting anything."""

    name = "memory"
    converge_timeout = 0.5
    events: ClassVar[list[str]] = []  # boot, teardown <lab>, crash <node>... (reset per test)

    def __init__(
        self,
        lab: Lab,
        progress: Progress = print,
        fail_boot: BaseException | None = None,
        missing: str = "",
        up: bool = False,
    ) -> None:
        super().__init__(lab, progress)
        self.fail_boot = fail_boot
        self.missing = missing
        self.up_now = up
        self.crashed: set[str] = set()

    def preflight(self) -> list[Requirement]:
        return [Requirement("a thing", not self.missing, self.missing)]

    def running(self) -> bool:
        return self.up_now

    def boot(self) -> None:
        self.events.append("boot")
        self.up_now = True
        if self.fail_boot:
            raise self.fail_boot

    @classmethod
    def teardown(cls, paths: LabPaths) -> None:
        cls.events.append(f"teardown {paths.name}")

    @classmethod
    def footprint(cls, paths: LabPaths) -> str:
        return ""

    def present(self) -> bool:
        return self.up_now

    def alive_nodes(self) -> set[str]:
        return set(self.lab.nodes) - self.crashed if self.up_now else set()

    def service_command(self, service: str, verb: str) -> str:
        return f"svc {verb} {service}"

    def log_command(self, service: str) -> str:
        return f"log {service}"

    def host_logs(self, node: str) -> list[Path]:
        return []

    def _crash(self, node: str) -> None:
        self.events.append(f"crash {node}")
        self.crashed.add(node)

    def _restart(self, node: str) -> None:
        self.events.append(f"restart {node}")
        self.crashed.discard(node)

    def _cut_link(self, node: str) -> None:
        self.events.append(f"cut {node}")

    def _restore_link(self, node: str) -> None:
        self.events.append(f"restore {node}")


# --- the local lab, for the root tier ----------------------------------------------


def lab_file(tmp_path: Path, name: str) -> Path:
    text = paths.DEFAULT_LAB.read_text().replace("name: seed", f"name: {name}")
    text = text.replace("keepalived: 2.2.7", f"keepalived: {SUITE_VERSIONS['keepalived']}")
    text = text.replace("nginx: 1.17.8", f"nginx: {SUITE_VERSIONS['nginx']}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def task_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a task runs in from a test: the caller's version overrides
    (HALAB_*_VERSION) never leak in, so the lab file's versions hold."""
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("HALAB_") and k.endswith("_VERSION"))}
    return {**clean, **(extra or {})}


def invoke(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A task as a user runs it, to completion."""
    return _task(args, task_environment(env), timeout)


def invoke_bare(*args: str, home: Path) -> subprocess.CompletedProcess:
    """A task as a fresh shell runs it, with a private state directory: none of the caller's
    settings (HALAB_*, a launcher, a venv on PATH) can change what it prints."""
    return _task(args, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HALAB_HOME": str(home)}, 120)


def _task(args: tuple[str, ...], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`invoke args` in the checkout, to completion, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_clean(name: str, grace: float = 10.0) -> None:
    """Nothing of the lab is left: namespace (and with it every tap), guests (a zombie counts
    until it is reaped: guests belong to the host's init, which reaps them in its own time,
    seen here to take several seconds), ssh helpers and ControlMaster sockets, mounts."""
    lab = LabPaths(name)
    deadline = time.monotonic() + grace
    while _zombie_guests() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _zombie_guests(), "guest processes not reaped"
    assert not netns.exists(lab.netns)
    assert processes(f"umid={lab.guest_tag()}") == []
    assert processes(str(lab.ssh) + "/") == [] and processes(str(lab.control_dir) + "/") == []
    assert not lab.control_dir.exists()
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if lab.netns in line]


def _zombie_guests() -> int:
    """user-mode Linux processes that exited but were not reaped yet (their command line is gone)."""
    count = 0
    # Not Path.glob: a process exiting mid-walk makes pathlib raise ProcessLookupError (seen in CI).
    for pid in (entry for entry in os.listdir("/proc") if entry.isdigit()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        count += "(linux.uml" in fields[0] and fields[1].split()[0] == "Z"
    return count


def requests_through_vip(provider: LocalProvider, count: int) -> list[str]:
    """count requests from the client to the VIP, each bounded to 2 s."""
    command = f"for i in $(seq {count}); do curl -s -m 2 http://172.25.1.100/ || echo FAILED; done"
    result = provider.remote.run("client", command, timeout=count * 3 + 10)
    return result.stdout.splitlines()


def phase_of(name: str = "crash x", bound: float = 1.0, **expect: Any) -> Phase:
    """A phase with a test bound and no end state to check: what the verdicts read of one."""
    return Phase(name, Fault("wait"), False, bound, "test", {}, **expect)


def judged(
    phase: Phase,
    acted: float,
    until: float,
    requests: list[dict],
    problems: list[str] | None = None,
    connections: list[dict] | None = None,
    macs: dict[str, str] | None = None,
) -> PhaseResult:
    """One phase judged on synthetic records, its action done the moment it started."""
    mark = verdicts.Mark(phase, acted, acted, until, list(problems or []))
    return verdicts.judge("s", mark, verdicts.Seen(requests, connections or [], macs or {}), Margin())
