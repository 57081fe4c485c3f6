"""KVM or TCG: which accelerator QEMU gets, decided by booting a kernel, not by /dev/kvm.

/dev/kvm can exist and still run no ordinary guest (nested virtualisation that hangs a
standard kernel in early boot). So the probe boots a real kernel under `-accel kvm`
with no root file system: a working KVM reaches the kernel's "cannot mount root" panic
in a second or two and QEMU exits; a broken one hangs until the timeout. Without a
working KVM, Packer and the Vagrant VMs use TCG (QEMU's emulator): everything works, and
CPU-bound work costs about nine times as long.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from halab import environment, paths

PROBE_TIMEOUT = 20.0  # seconds: a working KVM panics in ~2 s, TCG in ~4 s
DEVICE = Path("/dev/kvm")


@dataclass(frozen=True)
class Accelerator:
    """The accelerator chosen and why."""

    name: str  # kvm | tcg
    why: str

    @property
    def libvirt_driver(self) -> str:
        """vagrant-libvirt's `driver`: the domain type libvirt starts (kvm, or qemu for TCG)."""
        return "kvm" if self.name == "kvm" else "qemu"

    @property
    def cost(self) -> str:
        """What the choice costs, for `lab.doctor`."""
        if self.name == "kvm":
            return "KVM: guests run at near-native speed"
        return (
            "TCG, QEMU's emulator: CPU-bound work ~9x slower than the host, a VM boots in ~35 s, "
            "the bake ~13 minutes, lab.up ~13 minutes (test.pipeline ~35 minutes cold on 2 cores)"
        )


def choose(kernels: list[Path] | None = None) -> Accelerator:
    """HALAB_ACCELERATOR when set (kvm|tcg), else the probe's answer."""
    forced = environment.accelerator()
    if forced:
        return Accelerator(forced, f"set by {environment.ACCELERATOR}")
    return probe(tuple(kernels if kernels is not None else paths.probe_kernels()))


@functools.cache
def probe(kernels: tuple[Path, ...], timeout: float = PROBE_TIMEOUT) -> Accelerator:
    """Boot the first kernel under KVM; KVM when it runs to its panic within timeout, else TCG."""
    unprobed = _unprobed(kernels)
    if unprobed:
        return Accelerator("tcg", unprobed)
    argv = [
        "qemu-system-x86_64", "-accel", "kvm", "-m", "128", "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", "stdio", "-kernel", str(kernels[0]), "-append", "console=ttyS0 panic=-1",
    ]  # fmt: skip
    started = time.monotonic()
    try:
        result = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return Accelerator("tcg", f"{DEVICE} exists but a kernel booted under KVM hung (no panic within {timeout:g} s)")
    if "Kernel panic" in result.stdout:
        return Accelerator("kvm", f"a kernel booted under KVM in {time.monotonic() - started:.1f} s")
    why = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
    return Accelerator("tcg", f"{DEVICE} exists but QEMU cannot use it: {why}")


def _unprobed(kernels: tuple[Path, ...]) -> str:
    """Why KVM cannot even be tried here, or "" when the probe can run."""
    if not DEVICE.exists():
        return f"no {DEVICE} on this host"
    if not os.access(DEVICE, os.R_OK | os.W_OK):
        return f"{DEVICE} is not usable by this user"
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    if not kernels:
        return f"{DEVICE} exists but there is no kernel to probe it with yet (`invoke image.base` keeps one)"
    return ""
