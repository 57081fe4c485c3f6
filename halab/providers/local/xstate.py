"""The preload that lets user-mode Linux save guests' FPU state on any x86 host (xstate.c).

Debian 12's linux.uml saves each guest task's FPU state in 2696 bytes (x87 through AVX-512
and PKRU); a host whose CPU has AMX has an 11008-byte XSAVE area and refuses that short
write, so every guest died as its init started ("userspace - ptrace set fp regs failed,
errno = 14"). xstate.c wraps ptrace() in linux.uml to write the whole area. It is compiled on
first use and cached by its source's hash; every guest gets it, and on a host whose area
fits it changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from halab import paths
from halab.errors import ProviderError

SOURCE = Path(__file__).with_name("xstate.c")
COMPILER = "cc"
INSTALL = "apt-get install gcc libc6-dev"  # what gives a host the compiler


def preload() -> Path:
    """The compiled library (built now if this source was never built here)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    library = paths.uml_preloads() / f"xstate-{digest}.so"
    if library.exists():
        return library
    if not shutil.which(COMPILER):
        raise ProviderError(f"no C compiler ({COMPILER}) to build {SOURCE.name}: {INSTALL}")
    library.parent.mkdir(parents=True, exist_ok=True)
    partial = library.with_suffix(f".{os.getpid()}.partial")
    built = subprocess.run(
        [COMPILER, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(partial), str(SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ProviderError(f"compiling {SOURCE.name} failed: {built.stderr.strip()[-800:]}")
    partial.replace(library)  # atomic: a concurrent lab.up sees the whole file or none
    return library
