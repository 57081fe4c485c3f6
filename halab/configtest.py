"""Run keepalived's and nginx's own config tests on rendered files.

The daemons know their grammar better than any template review: a rendered file is
good when `keepalived -t` prints nothing and `nginx -t` reports no warning.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from halab.errors import BuildError
from halab.spec import CONFIG_TEST_PEER, Lab


@dataclass(frozen=True)
class Verdict:
    """A config test's outcome: ok, and everything the daemon printed."""

    path: Path
    ok: bool
    output: str


def keepalived(conf: Path, binary: str | Path = "keepalived", interfaces: Sequence[str] = ("eth0",)) -> Verdict:
    """`keepalived -t -f conf`, silent when the file is clean.

    keepalived also checks that every interface it names exists (the VRRP one, and with
    NAT the gateway's), so the test runs in a throwaway network namespace (unshare -n)
    holding just those: the result does not depend on the host's NICs, and nothing is
    left behind.
    """
    script = (
        'binary=$1 conf=$2; shift 2; n=0; for nic in "$@"; do n=$((n + 1)); '
        f'ip link add "$nic" type veth peer name "{CONFIG_TEST_PEER}$n" || exit 1; done; exec "$binary" -t -f "$conf"'
    )
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", _which(binary), str(conf.resolve()), *interfaces],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    return Verdict(conf, result.returncode == 0 and not output, output)


def interfaces(lab: Lab) -> tuple[str, ...]:
    """The interfaces a lab's keepalived.conf names: VRRP's, and with NAT the gateway's."""
    return (lab.vrrp.interface, *((lab.nat.interface,) if lab.nat else ()))


def nginx(conf: Path, binary: str | Path = "nginx") -> Verdict:
    """`nginx -q -t -c conf`: -q keeps only warnings and errors.

    nginx -t opens the log files and creates the temp directories its build names (under
    /var, per the write-up's flags), so it runs in a private mount namespace with a fresh
    tmpfs on /var holding the directories a provisioned node has: the host's /var is
    neither needed nor touched. The `nginx` user must exist (./bootstrap creates it).
    """
    script = (
        "mount -t tmpfs halab-var /var && mkdir -p /var/log/nginx /var/run/nginx /var/lock /var/temp/nginx "
        '&& exec "$1" -q -t -c "$2"'
    )
    result = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", _which(binary), str(conf.resolve())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    return Verdict(conf, result.returncode == 0 and not output, output)


def _which(binary: str | Path) -> str:
    found = shutil.which(str(binary))
    if not found:
        raise BuildError(f"{binary} not found; run `invoke build` (or ./bootstrap) first")
    return found
