"""Baking images with Packer: the exact command, the input hash, and skipping what exists.

One template set (packer/) serves every OS x target; a vars file per OS
(packer/vars/<os>.pkrvars.hcl) and these variables choose the rest. The input hash
covers everything that decides an image's content, so an image is rebuilt exactly when
one of them changed, and ami.publish can match an image to the tests that proved it.
Rocky and RHEL install from their ISO; Debian starts from the base disk image base.py
makes (libvirt only). QEMU gets KVM where it works and TCG where it does not.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from halab import build, paths, pins, sources
from halab.errors import ImageError, UsageError, shown
from halab.images import base
from halab.images.manifest import builds
from halab.images.overrides import check as check_overrides
from halab.images.overrides import content as content_overrides

# Credentials Packer takes only from the environment (PKR_VAR_<name>), never as -var.
SECRETS = ("rhsm_username", "rhsm_password", "ssh_password")
TARGETS = {"libvirt": "qemu.rocky", "virtualbox": "virtualbox-iso.rocky", "ami": "amazon-ebs.rocky"}
# Distributions whose images start from a base disk image (base.py), and the targets they have.
DISK_IMAGE_TARGETS = {"debian": {"libvirt": "qemu.debian"}}
BUILDER_TYPES = {"libvirt": "qemu", "virtualbox": "virtualbox-iso", "ami": "amazon-ebs"}
# Offline validation: `packer validate` would download Rocky's CHECKSUM file, and RHEL's
# ISO location is the user's. Neither decides whether the templates are right.
VALIDATE_ISO = "https://example.invalid/validate-only.iso"


def oses() -> list[str]:
    """The OS versions a vars file exists for, Rocky first: rocky-9, rocky-8, rhel-9, rhel-8."""
    names = [p.name.removesuffix(".pkrvars.hcl") for p in (paths.PACKER / "vars").glob("*.pkrvars.hcl")]
    return sorted(names, key=lambda name: (not name.startswith("rocky"), [-ord(c) for c in name]))


def vars_file(os_name: str) -> Path:
    """The OS's vars file; an --os that is not one of oses() (a path, `../`, a typo) is refused
    by name, as a usage error, before it becomes part of any path."""
    known = oses()
    if os_name not in known:
        raise UsageError(f"unknown OS {shown(str(os_name))}; known: {', '.join(known)}")
    return paths.PACKER / "vars" / f"{os_name}.pkrvars.hcl"


def distribution(os_name: str) -> str:
    """The vars file's os_name: rocky, rhel or debian."""
    match = re.search(r'^os_name\s*=\s*"([^"]+)"', vars_file(os_name).read_text(), re.MULTILINE)
    if not match:
        raise ImageError(f"{vars_file(os_name)} sets no os_name")
    return match[1]


def from_disk_image(os_name: str) -> bool:
    """The OS's images start from base.py's disk image instead of an install ISO."""
    return distribution(os_name) in DISK_IMAGE_TARGETS


def targets(os_name: str) -> dict[str, str]:
    """The targets the OS can be baked for, each with its Packer source."""
    return DISK_IMAGE_TARGETS.get(distribution(os_name), TARGETS)


def inputs(os_name: str) -> list[Path]:
    """The files beyond the build's inputs whose text decides the image: templates, kickstart, the OS vars."""
    files = [*paths.PACKER.glob("*.pkr.hcl"), *(paths.PACKER / "http").rglob("*"), vars_file(os_name)]
    return sorted(path for path in files if path.is_file())


def input_hash(os_name: str, versions: dict[str, str], content: dict[str, str] | None = None) -> str:
    """sha256 over the build's inputs (pins, provision scripts: build.inputs_digest), the
    image's own inputs' paths and text, and the --var overrides that change its content
    (none leaves the hash as it was)."""
    digest = hashlib.sha256()
    digest.update(f"build {build.inputs_digest(versions)}\n".encode())
    if from_disk_image(os_name):
        digest.update(f"base {base.plan(os_name).key}\n".encode())
    for path in inputs(os_name):
        digest.update(f"file {path.relative_to(paths.ROOT)} {len(path.read_bytes())}\n".encode())
        digest.update(path.read_bytes())
    for name, value in sorted((content or {}).items()):
        digest.update(f"var {name}={value}\n".encode())
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
    accelerator: str = "kvm"  # QEMU's, for the libvirt target: kvm or tcg (accelerator.choose)

    def __post_init__(self) -> None:
        vars_file(self.os_name)
        secret = sorted(set(self.overrides) & set(SECRETS))
        if secret:
            raise UsageError(
                f"{', '.join(secret)} would show in the process list as a command-line variable; set "
                f"{' and '.join(secret_variable(name) for name in secret)} in the environment instead"
            )
        if self.target not in TARGETS:
            raise UsageError(f"unknown target {shown(self.target)}; known: {', '.join(TARGETS)}")
        if self.target not in targets(self.os_name):
            raise UsageError(
                f"{self.os_name} is baked for {', '.join(targets(self.os_name))} only (from its base disk image)"
            )
        check_overrides(self.overrides, self.os_name, self.target, from_disk_image(self.os_name))

    @property
    def source(self) -> str:
        """The Packer source this build runs (-only)."""
        return targets(self.os_name)[self.target]

    @functools.cached_property
    def base_image(self) -> base.BaseImage | None:
        """The disk image the build starts from, for OSes without an install ISO."""
        return base.plan(self.os_name) if from_disk_image(self.os_name) else None

    @property
    def input_hash(self) -> str:
        return input_hash(self.os_name, self.versions, content_overrides(self.overrides))

    def tarballs(self) -> dict[str, Path]:
        return {name: sources.cached(pins.pin(name, version)) for name, version in self.versions.items()}

    def variables(self) -> dict[str, str]:
        values = {
            "output_dir": str(paths.images()),
            "git_revision": git_revision(),
            "input_hash": self.input_hash,
            "build_inputs": build.inputs_digest(self.versions),
        }
        if self.target == "libvirt":
            values["accelerator"] = self.accelerator
        if self.base_image:
            made = self.base_image.path.exists()
            values |= {
                "iso_url": str(self.base_image.path),
                "iso_checksum": f"sha256:{self._base_sha256}" if made else "none",
                "ssh_private_key_file": str(paths.vagrant_insecure_key()),
            }
        for name, version in sorted(self.versions.items()):
            pin = pins.pin(name, version)
            values |= {
                f"{name}_version": version,
                f"{name}_tarball": str(sources.cached(pin)),
                f"{name}_sha256": pin.sha256 or "",
            }
        return values | self.overrides

    @functools.cached_property
    def _base_sha256(self) -> str:
        assert self.base_image
        return self.base_image.sha256

    def command(self, extra: dict[str, str] | None = None, verb: str = "build") -> list[str]:
        """The packer command line, run from the project's root."""
        argv = ["packer", verb, f"-only={self.source}", f"-var-file={vars_file(self.os_name)}"]
        if verb == "build":
            # A build runs only when no image with this input hash exists: whatever an earlier
            # one left in the output paths (a disk, a box) is stale, and Packer would refuse it.
            argv.insert(2, "-force")
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
    boxes = [Path(f["name"]) for f in entry.get("files") or [] if f["name"].endswith(".box")]
    if not boxes:
        raise ImageError(f"Packer's manifest lists no .box for build {entry.get('packer_run_uuid', '?')}: rebuild it")
    box = boxes[0]
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
    # A directory that does not exist: Packer refuses to validate a build whose output
    # directory does (as it does after every bake), though validating writes nothing.
    unused = Path(tempfile.gettempdir()) / f"halab-packer-validate-{os.getpid()}"
    extra = {"iso_checksum": "none", "output_dir": str(unused)}
    if not re.search(r"^iso_url\s*=", vars_file(os_name).read_text(), re.MULTILINE):
        extra["iso_url"] = VALIDATE_ISO
    for name, tarball in plan.tarballs().items():
        if not tarball.exists():
            extra[f"{name}_tarball"] = str(paths.PACKER / "README.md")
    env = {**os.environ, "PACKER_CACHE_DIR": str(paths.packer_cache())}
    return subprocess.run(
        plan.command(extra, verb="validate"), capture_output=True, text=True, cwd=paths.ROOT, timeout=120, env=env
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
    if plan.base_image:
        base.make(plan.os_name, progress)
    for name, version in plan.versions.items():
        sources.fetch(pins.pin(name, version), progress=progress)
    progress(f"$ {plan.shell()}")
    started = plan.input_hash
    env = {**os.environ, "PACKER_CACHE_DIR": str(paths.packer_cache())}
    if subprocess.run(plan.command(), cwd=paths.ROOT, env=env).returncode != 0:
        raise ImageError(f"packer build failed for {plan.os_name} {plan.target}; its output is above")
    if plan.input_hash != started:
        raise ImageError(
            f"the image's inputs (packer/, provision/, the pins) changed while Packer ran (input hash "
            f"{started[:12]} at the start, {plan.input_hash[:12]} now): the image may hold either; bake again"
        )
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
