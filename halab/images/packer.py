"""Baking images with Packer: the exact command, the input hash, and skipping what exists.

One template set (packer/) serves every OS x target; a vars file per OS
(packer/vars/<os>.pkrvars.hcl) and these variables choose the rest. The input hash
covers everything that decides an image's content, so an image is rebuilt exactly when
one of them changed, and ami.publish can match an image to the tests that proved it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from halab import build, paths, pins, sources
from halab.errors import ImageError, UsageError
from halab.images.manifest import builds

# Credentials Packer takes only from the environment (PKR_VAR_<name>), never as -var.
SECRETS = ("rhsm_username", "rhsm_password", "ssh_password")
TARGETS = {"libvirt": "qemu.rocky", "virtualbox": "virtualbox-iso.rocky", "ami": "amazon-ebs.rocky"}
BUILDER_TYPES = {"libvirt": "qemu", "virtualbox": "virtualbox-iso", "ami": "amazon-ebs"}
# Offline validation: `packer validate` would download Rocky's CHECKSUM file, and RHEL's
# ISO location is the user's. Neither decides whether the templates are right.
VALIDATE_ISO = "https://example.invalid/validate-only.iso"


def oses() -> list[str]:
    """The OS versions a vars file exists for, Rocky first: rocky-9, rocky-8, rhel-9, rhel-8."""
    names = [p.name.removesuffix(".pkrvars.hcl") for p in (paths.PACKER / "vars").glob("*.pkrvars.hcl")]
    return sorted(names, key=lambda name: (not name.startswith("rocky"), [-ord(c) for c in name]))


def vars_file(os_name: str) -> Path:
    path = paths.PACKER / "vars" / f"{os_name}.pkrvars.hcl"
    if not path.exists():
        raise ImageError(f"unknown OS {os_name!r}; known: {', '.join(oses())}")
    return path


def inputs(os_name: str) -> list[Path]:
    """The files beyond the build's inputs whose text decides the image: templates, kickstart, the OS vars."""
    files = [*paths.PACKER.glob("*.pkr.hcl"), *(paths.PACKER / "http").rglob("*"), vars_file(os_name)]
    return sorted(path for path in files if path.is_file())


def input_hash(os_name: str, versions: dict[str, str]) -> str:
    """sha256 over the build's inputs (pins, provision scripts: build.inputs_digest) and the
    image's own inputs' paths and text."""
    digest = hashlib.sha256()
    digest.update(f"build {build.inputs_digest(versions)}\n".encode())
    for path in inputs(os_name):
        digest.update(f"file {path.relative_to(paths.ROOT)} {len(path.read_bytes())}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_revision() -> str:
    result = subprocess.run(["git", "-C", str(paths.ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if result.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "-C", str(paths.ROOT), "status", "--porcelain"], capture_output=True, text=True)
    return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class Plan:
    """One image build: which OS, which target, and every variable Packer gets."""

    os_name: str
    target: str
    versions: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        vars_file(self.os_name)
        secret = sorted(set(self.overrides) & set(SECRETS))
        if secret:
            raise UsageError(
                f"{', '.join(secret)} would show in the process list as a command-line variable; set "
                f"{' and '.join(secret_variable(name) for name in secret)} in the environment instead"
            )
        if self.target not in TARGETS:
            raise ImageError(f"unknown target {self.target!r}; known: {', '.join(TARGETS)}")

    @property
    def input_hash(self) -> str:
        return input_hash(self.os_name, self.versions)

    def tarballs(self) -> dict[str, Path]:
        return {name: sources.cached(pins.pin(name, version)) for name, version in self.versions.items()}

    def variables(self) -> dict[str, str]:
        values = {
            "output_dir": str(paths.images()),
            "git_revision": git_revision(),
            "input_hash": self.input_hash,
            "build_inputs": build.inputs_digest(self.versions),
        }
        for name, version in sorted(self.versions.items()):
            pin = pins.pin(name, version)
            values |= {
                f"{name}_version": version,
                f"{name}_tarball": str(sources.cached(pin)),
                f"{name}_sha256": pin.sha256 or "",
            }
        return values | self.overrides

    def command(self, extra: dict[str, str] | None = None, verb: str = "build") -> list[str]:
        """The packer command line, run from the project's root."""
        argv = ["packer", verb, f"-only={TARGETS[self.target]}", f"-var-file={vars_file(self.os_name)}"]
        for key, value in {**self.variables(), **(extra or {})}.items():
            argv += ["-var", f"{key}={value}"]
        return [*argv, str(paths.PACKER)]

    def shell(self) -> str:
        """The command as one line a user can paste; it holds no secret (they come from the environment)."""
        return " ".join(shlex.quote(arg) for arg in self.command())

    def secrets(self) -> dict[str, bool]:
        """The credentials this OS's build reads from the environment, and whether each is set."""
        wanted = [name for name in SECRETS if name.startswith("rhsm_")] if self.os_name.startswith("rhel") else []
        return {secret_variable(name): bool(os.environ.get(secret_variable(name))) for name in wanted}


def secret_variable(name: str) -> str:
    """Packer reads variable `name` from this environment variable: never from argv, where `ps` shows it."""
    return f"PKR_VAR_{name}"


def existing(plan: Plan, manifest: Path | None = None) -> dict | None:
    """A build in Packer's manifest with this target and input hash whose files still exist."""
    for entry in builds(manifest or paths.manifest()):
        if (
            entry.get("builder_type") == BUILDER_TYPES[plan.target]
            and entry["custom_data"].get("input_hash") == plan.input_hash
            and all(Path(f["name"]).exists() for f in entry["files"])
        ):
            return entry
    return None


def box_metadata(entry: dict, box_name: str) -> dict:
    """What `vagrant box add <metadata.json>` needs for a box Packer built (file URL, sha256)."""
    box = next(Path(f["name"]) for f in entry["files"] if f["name"].endswith(".box"))
    provider = {"qemu": "libvirt", "virtualbox-iso": "virtualbox"}[entry["builder_type"]]
    version = f"{entry['build_time']}.0.0" if "build_time" in entry else "0.0.0"
    return {
        "name": box_name,
        "description": f"halab {entry['custom_data']['os']} with keepalived "
        f"{entry['custom_data']['keepalived_version']} and nginx "
        f"{entry['custom_data']['nginx_version']} from source",
        "versions": [
            {
                "version": version,
                "providers": [
                    {
                        "name": provider,
                        "url": box.resolve().as_uri(),
                        "checksum_type": "sha256",
                        "checksum": sources.sha256_of(box),
                    }
                ],
            }
        ],
    }


def validate(os_name: str, target: str, versions: dict[str, str]) -> subprocess.CompletedProcess:
    """`packer validate` of one OS x target, offline: placeholders stand in for the ISO checksum
    and for tarballs not fetched yet (validation reads the template, not their content)."""
    plan = Plan(os_name, target, versions)
    extra = {"iso_checksum": "none"}
    if not re.search(r"^iso_url\s*=", vars_file(os_name).read_text(), re.MULTILINE):
        extra["iso_url"] = VALIDATE_ISO
    for name, tarball in plan.tarballs().items():
        if not tarball.exists():
            extra[f"{name}_tarball"] = str(paths.PACKER / "README.md")
    return subprocess.run(
        plan.command(extra, verb="validate"), capture_output=True, text=True, cwd=paths.ROOT, timeout=120
    )


def bake(plan: Plan, force: bool = False, progress: sources.Progress = print) -> dict:
    """Run Packer for plan unless an image with its input hash exists; the manifest entry."""
    found = existing(plan)
    if found and not force:
        progress(
            f"{plan.os_name} {plan.target}: an image with input hash {plan.input_hash[:12]} exists "
            f"({found.get('artifact_id')}); skipping the build (--force rebuilds)"
        )
        return found
    if not shutil.which("packer"):
        raise ImageError("packer is not installed: see packer/README.md (1.7+ with `packer init packer/plugins`)")
    for name, version in plan.versions.items():
        sources.fetch(pins.pin(name, version), progress=progress)
    progress(f"$ {plan.shell()}")
    if subprocess.run(plan.command(), cwd=paths.ROOT).returncode != 0:
        raise ImageError(f"packer build failed for {plan.os_name} {plan.target}; its output is above")
    entry = existing(plan)
    if entry is None:
        raise ImageError(
            f"packer finished but {paths.manifest()} has no {plan.target} build with input hash {plan.input_hash[:12]}"
        )
    if plan.target in ("libvirt", "virtualbox"):
        metadata = paths.box_metadata(plan.os_name, plan.target)
        metadata.write_text(json.dumps(box_metadata(entry, f"halab/{plan.os_name}"), indent=1) + "\n")
        progress(f"box ready: vagrant box add {metadata}")
    return entry
