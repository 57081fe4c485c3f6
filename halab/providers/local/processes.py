"""Host processes of the local lab, found by a marker on their command line.

A guest is several host processes, started in their own sessions; the ssh helpers that
enter a lab's namespace are more. Each carries a marker (a guest's tag, the lab's ssh
directory, its namespace) so teardown finds all of them from /proc alone, even after
the process that started them died with kill -9.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from halab.errors import ProviderError


def checked(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a host command the lab needs; its failure is a ProviderError naming the command and
    what it said (as the Vagrant provider's are), never a CalledProcessError traceback."""
    try:
        return subprocess.run(command, check=True, text=True, **options)
    except subprocess.CalledProcessError as exc:
        said = exc.stderr.strip() if isinstance(exc.stderr, str) else ""
        raise ProviderError(
            f"`{' '.join(command)}` failed ({exc.returncode})" + (f": {said}" if said else "")
        ) from None


def processes(marker: str) -> list[int]:
    """PIDs of host processes whose command line contains marker (guests, ssh masters)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def arguments(prefix: str) -> set[str]:
    """The distinct command-line arguments starting with prefix (one per guest for its umid=)."""
    found: set[str] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                words = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            found.update(word.decode(errors="replace") for word in words if word.startswith(prefix.encode()))
    return found


def kill_all(marker: str, timeout: float = 5.0) -> None:
    """SIGKILL every process carrying marker, and wait until they have left /proc (bounded)."""
    deadline = time.monotonic() + timeout
    killed: set[int] = set()
    while (pids := processes(marker)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    while any(_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = processes(marker) + [pid for pid in killed if _alive(pid)]
    if left:
        raise ProviderError(f"processes matching {marker!r} survived SIGKILL: {sorted(set(left))}")


def _alive(pid: int) -> bool:
    """Still running: present in /proc and not a zombie (init reaps those; they hold nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
