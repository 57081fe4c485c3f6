"""`invoke image.*`: bake Rocky Linux / RHEL / Debian images with Packer (boxes and AMIs)."""

from __future__ import annotations

import dataclasses

from halab import accelerator
from halab.errors import ImageError
from halab.images import base, overrides, packer
from halab.tasks import LAB_HELP, key_values, load, task

TARGET_HELP = f"what to build: {', '.join(packer.TARGETS)}"


@task(
    iterable=["var"],
    help={
        **LAB_HELP,
        "os": f"OS version: {', '.join(packer.oses())} (default: rocky-9; debian-12: libvirt only)",
        "target": TARGET_HELP + " (default: libvirt)",
        "dry_run": "print the packer command and its variables, run nothing",
        "force": "build even when an image with the same input hash exists",
        "var": "Packer variable of how or where to build, KEY=VALUE (repeatable): "
        f"{', '.join(sorted(overrides.VARIABLES))}; e.g. --var iso_url=... for RHEL",
    },
)
def build(c, os="rocky-9", target="libvirt", lab=None, dry_run=False, force=False, var=None):
    """Bake a Rocky/RHEL/Debian image with the lab's keepalived and nginx compiled in.

    Skipped when an image with the same input hash exists (--force rebuilds).
    """
    overrides = key_values(var or [], "--var", "KEY=VALUE")
    plan = packer.Plan(os, target, load(lab).versions.model_dump(), overrides)  # every option checked first
    chosen = accelerator.choose() if target == "libvirt" else None
    if chosen:
        plan = dataclasses.replace(plan, accelerator=chosen.name)
        print(f"# QEMU accelerator: {chosen.name} ({chosen.why})")
    if dry_run:
        print(f"# {os} {target}, input hash {plan.input_hash}")
        if plan.base_image and not plan.base_image.path.exists():
            print(f"# base image: {plan.base_image.path} (made by `invoke image.base --os {os}` when the build runs)")
        for name, tarball in plan.tarballs().items():
            later = "" if tarball.exists() else " (fetched and verified when the build runs)"
            print(f"# {name} tarball: {tarball}{later}")
        for variable, present in plan.secrets().items():
            print(f"# {variable}: {'set' if present else 'NOT set'} in the environment (packer reads it there)")
        print(plan.shell())
        return
    packer.bake(plan, force=force)


@task(name="base", help={"os": f"OS version: {', '.join(base.SUITES)} (default: debian-12)"})
def base_(c, os="debian-12"):
    """Make the bootable base disk image that Debian's images start from.

    mmdebstrap from the host's Debian archive, GRUB on a partitioned qcow2; cached by its
    input hash. Needs root.
    """
    packer.vars_file(os)  # an --os that is no OS (a path, a line end) is refused by name first
    base.make(os)


@task(help=LAB_HELP)
def validate(c, lab=None):
    """`packer validate` every OS x target, offline (no credentials, no ISO download)."""
    versions = load(lab).versions.model_dump()
    failed = []
    for os_name in packer.oses():
        for target in packer.targets(os_name):
            result = packer.validate(os_name, target, versions)
            ok = result.returncode == 0
            print(
                f"  {'ok  ' if ok else 'FAIL'} {os_name} {target}" + ("" if ok else f"\n{result.stdout}{result.stderr}")
            )
            failed += [] if ok else [f"{os_name} {target}"]
    if failed:
        raise ImageError(f"packer validate failed for: {', '.join(failed)}")
