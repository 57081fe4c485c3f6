"""KVM or TCG: the probe boots a kernel under KVM and believes only a kernel that ran (its
panic), with a stand-in QEMU that panics, hangs or fails; and the override."""

from __future__ import annotations

import os

import pytest

from halab import accelerator
from halab.errors import UsageError


@pytest.fixture
def qemu(tmp_path, monkeypatch):
    """A stand-in qemu-system-x86_64 on PATH whose behaviour a test writes, and a usable /dev/kvm."""
    device = tmp_path / "kvm"
    device.touch()
    monkeypatch.setattr(accelerator, "DEVICE", device)
    monkeypatch.delenv("HALAB_ACCELERATOR", raising=False)
    script = tmp_path / "bin" / "qemu-system-x86_64"
    script.parent.mkdir()
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    accelerator.probe.cache_clear()

    def behave(body: str) -> None:
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)

    yield behave
    accelerator.probe.cache_clear()


def test_a_kernel_that_panics_under_kvm_means_kvm(qemu, tmp_path):
    qemu('echo "Kernel panic - not syncing: VFS: Unable to mount root fs"')
    chosen = accelerator.choose([tmp_path / "vmlinuz"])
    assert chosen.name == "kvm" and chosen.libvirt_driver == "kvm"


def test_a_kernel_that_hangs_under_kvm_means_tcg(qemu, tmp_path):
    qemu("echo 'Probing EDD'; sleep 30")
    chosen = accelerator.probe((tmp_path / "vmlinuz",), timeout=1)
    assert chosen.name == "tcg" and "hung" in chosen.why and chosen.libvirt_driver == "qemu"
    assert "9x slower" in chosen.cost


def test_qemu_refusing_kvm_means_tcg_with_its_reason(qemu, tmp_path):
    qemu('echo "Could not access KVM kernel module: Permission denied" >&2; exit 1')
    assert "Could not access KVM" in accelerator.choose([tmp_path / "vmlinuz"]).why


def test_without_a_kernel_or_a_device_it_is_tcg_and_says_why(qemu, tmp_path, monkeypatch):
    assert "no kernel to probe" in accelerator.choose([]).why
    monkeypatch.setattr(accelerator, "DEVICE", tmp_path / "absent")
    assert accelerator.choose([tmp_path / "vmlinuz"]).why.startswith("no ")


def test_halab_accelerator_overrides_the_probe_and_is_checked(monkeypatch):
    monkeypatch.setenv("HALAB_ACCELERATOR", "tcg")
    assert accelerator.choose([]).why == "set by HALAB_ACCELERATOR"
    monkeypatch.setenv("HALAB_ACCELERATOR", "hvf")
    with pytest.raises(UsageError, match="kvm, tcg"):
        accelerator.choose([])
