"""What `image.build --var` may set: how and where an image is built, never what it is.

The versions, the tarballs and their sha256, the input hash, the build inputs, the git
revision, the OS, its source AMI and the output directory come from the lab, the pins and
the checkout. An override of any of them bakes one thing and records another: an image
found, reused and published under an input hash that does not describe it. So --var takes
only the variables below, each for the targets whose builder reads it, each in a strict
form (a value reaches Packer's command line, and Packer hands some to the build VM); the
ones that change what the image holds (CONTENT) count in its input hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from halab.errors import UsageError

LOCAL = ("libvirt", "virtualbox")
# Host names and path segments only: no spaces, quotes, `$`, and no query, fragment or
# `scheme::` (Packer's downloader reads those as instructions: archive=, checksum=, git::).
_URL = r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[A-Za-z0-9._~%+/-]*"
_PATH = r"/[A-Za-z0-9._+/-]+"


@dataclass(frozen=True)
class Variable:
    """One variable --var may set: the targets that read it and the form its value takes."""

    targets: tuple[str, ...]
    allowed: str  # the form, as the error states it
    pattern: str = ""  # the whole value matches it
    bounds: tuple[int, int] | None = None  # or: a whole number in this range

    def accepts(self, value: str) -> bool:
        if self.bounds:
            low, high = self.bounds
            return re.fullmatch(r"[0-9]{1,9}", value) is not None and low <= int(value) <= high
        return re.fullmatch(self.pattern, value) is not None


VARIABLES = {
    "iso_url": Variable(
        LOCAL, "an http(s) URL without a query, or an absolute path (letters, digits, ._+-/)", f"{_URL}|{_PATH}"
    ),
    "iso_checksum": Variable(
        LOCAL,
        "sha256:<64 hex digits>, sha512:<128 hex digits>, or file:<http(s) URL or absolute path of a checksum file>",
        f"sha256:[0-9a-fA-F]{{64}}|sha512:[0-9a-fA-F]{{128}}|file:(?:{_URL}|{_PATH})",
    ),
    "cpus": Variable(LOCAL, "a whole number 1..64", bounds=(1, 64)),
    "memory": Variable(LOCAL, "a whole number 512..262144 (MiB)", bounds=(512, 262144)),
    "disk_size": Variable(LOCAL, "a whole number 2048..2097152 (MiB)", bounds=(2048, 2097152)),
    "headless": Variable(LOCAL, "true or false", "true|false"),
    "aws_region": Variable(
        ("ami",), "an AWS region like eu-west-1 or us-gov-west-1", r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
    ),
    "aws_instance_type": Variable(
        ("ami",), "an EC2 instance type like t3.small or m7i-flex.large", r"[a-z][a-z0-9-]*\.[a-z0-9]+"
    ),
}
# What the image holds, beyond what the vars file says: the installed ISO, the disk's size.
CONTENT = ("iso_url", "iso_checksum", "disk_size")
# Set by invoke for images that start from a base disk image (base.py), never by --var.
BASE_IMAGE = ("iso_url", "iso_checksum")


def settable(target: str, from_disk_image: bool) -> list[str]:
    """The variables --var may set for this target, by name."""
    fixed = BASE_IMAGE if from_disk_image else ()
    return sorted(name for name, v in VARIABLES.items() if target in v.targets and name not in fixed)


def check(overrides: dict[str, str], os_name: str, target: str, from_disk_image: bool) -> None:
    """Refuse a variable --var may not set for this build, or a value not in its form: one
    line naming the variable, and what is allowed."""
    allowed = settable(target, from_disk_image)
    for name, value in sorted(overrides.items()):
        if name not in allowed:
            why = "does not apply to this build" if name in VARIABLES else "decides what the image is or records it"
            raise UsageError(
                f"--var {name[:40]} cannot be set: it {why}; "
                f"--var may set, for {os_name} {target}: {', '.join(allowed)}"
            )
        if not VARIABLES[name].accepts(value):
            raise UsageError(f"--var {name}={value[:80]!r}: allowed: {VARIABLES[name].allowed}")


def content(overrides: dict[str, str]) -> dict[str, str]:
    """The overrides that change what the image holds: they count in its input hash."""
    return {name: value for name, value in overrides.items() if name in CONTENT}
