"""`invoke image.*`: bake Rocky Linux / RHEL images with Packer (boxes and AMIs)."""

from __future__ import annotations

from invoke import Exit, task

from halab import image
from halab.sources import SourceError
from halab.tasks.lab import LAB_HELP, load

TARGET_HELP = f"what to build: {', '.join(image.TARGETS)}"


@task(iterable=["var"], help={
    **LAB_HELP,
    "os": f"OS version: {', '.join(image.oses())} (default: rocky-9)",
    "target": TARGET_HELP + " (default: libvirt)",
    "dry_run": "print the packer command and its variables, run nothing",
    "force": "build even when an image with the same input hash exists",
    "var": "extra Packer variable, KEY=VALUE (repeatable), e.g. --var iso_url=... for RHEL",
})
def build(c, os="rocky-9", target="libvirt", lab=None, dry_run=False, force=False, var=None):
    """Bake an image: keepalived and nginx from the lab's pinned sources on Rocky/RHEL; skipped
    when an image with the same input hash exists."""
    overrides = dict(item.split("=", 1) for item in var or [] if "=" in item)
    try:
        plan = image.Plan(os, target, load(lab).versions.model_dump(), overrides)
        if dry_run:
            print(f"# {os} {target}, input hash {plan.input_hash}")
            for name, tarball in plan.tarballs().items():
                print(f"# {name} tarball: {tarball}{'' if tarball.exists() else ' (fetched and verified when the build runs)'}")
            print(plan.shell())
            return
        image.build(plan, force=force)
    except (image.ImageError, SourceError) as exc:
        raise Exit(str(exc), code=1) from None


@task(help=LAB_HELP)
def validate(c, lab=None):
    """`packer validate` every OS x target, offline (no credentials, no ISO download)."""
    versions = load(lab).versions.model_dump()
    failed = []
    for os_name in image.oses():
        for target in image.TARGETS:
            result = image.validate(os_name, target, versions)
            ok = result.returncode == 0
            print(f"  {'ok  ' if ok else 'FAIL'} {os_name} {target}" + ("" if ok else f"\n{result.stdout}{result.stderr}"))
            failed += [] if ok else [f"{os_name} {target}"]
    if failed:
        raise Exit(f"packer validate failed for: {', '.join(failed)}", code=1)
