"""Run keepalived's and nginx's own config tests on rendered files.

The daemons know their grammar better than any template review: a rendered file is
good when `keepalived -t` prints nothing and `nginx -t` reports no warning.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Verdict:
    """A config test's outcome: ok, and everything the daemon printed."""

    path: Path
    ok: bool
    output: str


def keepalived(conf: Path, binary: str = "keepalived", interface: str = "eth0") -> Verdict:
    """`keepalived -t -f conf`, silent when the file is clean.

    keepalived also checks that the VRRP interface exists, so the test runs in a
    throwaway network namespace (unshare -n) holding just that interface: the result
    does not depend on the host's NICs, and nothing is left behind.
    """
    script = f'ip link add "$1" type veth peer name halab-peer && exec "$2" -t -f "$3"'
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", interface, _which(binary), str(conf)],
        capture_output=True, text=True, timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    return Verdict(conf, result.returncode == 0 and not output, output)


def nginx(conf: Path, binary: str = "nginx") -> Verdict:
    """`nginx -q -t -c conf`: -q keeps only warnings and errors."""
    result = subprocess.run([_which(binary), "-q", "-t", "-c", str(conf)], capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    return Verdict(conf, result.returncode == 0 and not output, output)


def _which(binary: str) -> str:
    found = shutil.which(binary)
    if not found:
        raise FileNotFoundError(f"{binary} not found; run `invoke build` (or ./bootstrap) first")
    return found
