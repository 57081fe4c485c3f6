"""Run the host's keepalived on an operator's file, where it can do no harm.

keepalived is the authority on its own grammar: its config test (`-t`) gives its warnings,
and started with `--dump-conf` it logs the configuration as it resolved it (includes,
`@id` conditionals, `$VARIABLES`, every default). It runs as nobody in a throwaway user,
network and mount namespace: the interfaces the file names exist there as veth pairs,
/etc/keepalived is a copy of the operator's files, /run and /tmp are private tmpfs, and
the whole namespace vanishes when keepalived is stopped. Only the VRRP process runs (-P):
the checker needs the ip_vs module, which the host may not have.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from halab.spec import CONFIG_TEST_PEER

NOBODY = 65534
# keepalived's VRRP process dumps its configuration at once; a loaded host gets generous time.
DUMP_SECONDS = 10.0
# The section after everything read from the dump: the host's interfaces, which are the scratch's.
LAST_SECTION = "------< Interfaces >------"
_MARK = "halab-config-test-rc="
# keepalived -l starts each line with the time: "Sun Dec  6 16:33:45 2026: ".
_STAMP = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}: ")

_SCRIPT = r"""
set -e
binary=$1 confdir=$2 main=$3 ident=$4; shift 4
n=0
for nic in "$@"; do
    n=$((n + 1)); ip link add "$nic" type veth peer name "PEER$n"; ip link set "$nic" up
done
mount -t tmpfs halab-run /run
# The build may live under /tmp (a checkout there), which the private /tmp below hides.
cp "$binary" /run/keepalived && binary=/run/keepalived
mkdir /run/host-etc
mount --bind /etc /run/host-etc
mount -t tmpfs halab-etc /etc
for entry in /run/host-etc/*; do ln -s "$entry" "/etc/${entry##*/}"; done
mkdir /etc/keepalived
mount --bind "$confdir" /etc/keepalived
mount -t tmpfs halab-tmp /tmp
set +e
"$binary" -t -i "$ident" -f "/etc/keepalived/$main" 2>&1
echo "MARK$?"
exec "$binary" -P -n -l -d -i "$ident" -f "/etc/keepalived/$main" -p /run/k.pid -r /run/v.pid -c /run/c.pid 2>&1
""".replace("PEER", CONFIG_TEST_PEER).replace("MARK", _MARK)


@dataclass(frozen=True)
class Scratch:
    """What keepalived said about one director's file: its config test and its dump."""

    config_id: str
    test_ok: bool
    test_output: str
    dump: str


def run(
    binary: Path, root: Path, files: Sequence[Path], main: Path, config_id: str, interfaces: Sequence[str]
) -> Scratch:
    """keepalived's config test and dump of main (one of files, all under root) for config_id."""
    with tempfile.TemporaryDirectory(prefix="halab-import-") as staging:
        confdir = Path(staging) / "keepalived"
        _copy(root, files, confdir)
        os.chmod(staging, 0o755)
        # root drops to nobody first; anyone else already is unprivileged.
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
        argv = [
            *drop,
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "--mount",
            "sh",
            "-c",
            _SCRIPT,
            "sh",
            str(binary),
            str(confdir),
            str(main.resolve().relative_to(root)),
            config_id,
            *interfaces,
        ]
        lines = _output(argv)
    test, dump = _split(lines)
    ok = bool(test) and test[-1] == f"{_MARK}0" and len(test) == 1
    shown = "\n".join(line for line in test if not line.startswith(_MARK))
    return Scratch(config_id, ok, shown, "\n".join(dump))


def _copy(root: Path, files: Sequence[Path], target: Path) -> None:
    """The operator's files, readable by nobody, at their places relative to root."""
    target.mkdir(mode=0o755)
    for path in files:
        copy = target / path.resolve().relative_to(root)
        copy.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        copy.chmod(0o644)


def _output(argv: list[str]) -> list[str]:
    """The lines the scratch run prints until the dump is complete (or DUMP_SECONDS pass);
    then keepalived and its namespace are stopped."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    pending = b""
    deadline = time.monotonic() + DUMP_SECONDS
    try:
        while time.monotonic() < deadline and len(lines) < 20000:
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = _STAMP.sub("", raw.decode("utf-8", "replace"), count=1)
                if line.strip() == LAST_SECTION:
                    return lines
                lines.append(line)
        return lines
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """keepalived and everything in its namespace, by the process group it leads."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    if process.stdout:
        process.stdout.close()


def _split(lines: list[str]) -> tuple[list[str], list[str]]:
    """The config test's lines (through its exit status) and the daemon's after them."""
    for index, line in enumerate(lines):
        if line.startswith(_MARK):
            return lines[: index + 1], lines[index + 1 :]
    return lines, []
