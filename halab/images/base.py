"""Debian 12's base disk image: what Packer's qemu builder starts from where no install ISO can be had.

Rocky and RHEL are installed by Packer from their ISO (kickstart). CI machines reach
only Debian's archive, so Debian 12 is made here instead: mmdebstrap installs a tree
from the host's configured Debian archive (kernel, systemd, sshd, the vagrant user,
and every package the lab's roles and the from-source builds need, so a VM never needs
a network), packer/base/debian.sh makes it bootable, and this module puts it on a
partitioned disk with GRUB in front: no loop device, no mount (mkfs.ext4 -d fills the
partition from the tree). The result is cached under its input hash, so it is made once.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from halab import paths, sources
from halab.errors import ImageError, UsageError

SUITES = {"debian-12": "bookworm"}
SIZE_MIB = 4096  # the disk as the VMs see it; the qcow2 holds only what is written (~1.4 GiB)
PARTITION_START = 2048  # sectors: the first MiB holds the MBR and GRUB's core image
# The image's packages. Booting: kernel, systemd, sshd, ifupdown + DHCP (eth0), GRUB's
# i386-pc modules (debian.sh runs grub-mkimage), rsync (Vagrant's synced folders).
# The roles (provision/node.sh, image.sh): IPVS and ARP tools, curl, python3 and the SMTP
# sink. The builds (provision/build-*.sh): compilers and headers. tests/unit checks this
# list holds every Debian package those scripts would otherwise install.
PACKAGES = (
    *("systemd-sysv", "openssh-server", "sudo", "linux-image-amd64", "ifupdown", "isc-dhcp-client", "grub-pc-bin"),
    *("rsync", "iproute2", "kmod", "procps", "less"),
    *("ipvsadm", "arptables", "curl", "python3", "python3-aiosmtpd"),
    *("build-essential", "pkg-config", "libssl-dev", "libnl-3-dev", "libnl-genl-3-dev", "libnl-route-3-dev"),
    *("libnfnetlink-dev", "zlib1g-dev", "libpcre3-dev"),
)
HOOK = paths.PACKER / "base" / "debian.sh"
TOOLS = {"mmdebstrap": "mmdebstrap", "sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils"}


def apt_sources(root: Path = Path("/etc/apt")) -> Path:
    """The host's Debian archive as apt knows it (deb822 first): what mmdebstrap installs from."""
    for candidate in (root / "sources.list.d" / "debian.sources", root / "sources.list"):
        if candidate.exists() and candidate.read_text().strip():
            return candidate
    raise ImageError(f"no Debian archive configured in {root}: image.base installs from the host's apt sources")


@dataclass(frozen=True)
class BaseImage:
    """One base image: its OS and the file it is (or will be), named by its input hash."""

    os_name: str
    key: str

    @property
    def path(self) -> Path:
        return paths.base_image(self.os_name, self.key)

    @property
    def kernel(self) -> Path:
        """The kernel the image boots, kept beside it for the KVM probe."""
        return self.path.with_suffix(".vmlinuz")

    @property
    def sha256(self) -> str:
        return sources.sha256_of(self.path)


def plan(os_name: str, apt_root: Path = Path("/etc/apt")) -> BaseImage:
    """The base image of os_name, named by the sha256 of everything that decides it: the suite,
    the packages, the hook's text, the archive's configuration, the vagrant key and the layout."""
    if os_name not in SUITES:
        raise UsageError(
            f"image.base makes {', '.join(SUITES)} only; {os_name} is installed from its ISO by Packer "
            "(`invoke image.build --os " + os_name + "`)"
        )
    digest = hashlib.sha256()
    key = paths.vagrant_insecure_key().with_suffix(".pub")
    for part in (
        f"suite {SUITES[os_name]} size {SIZE_MIB} start {PARTITION_START} mbr ext4 grub-i386-pc",
        " ".join(PACKAGES),
        HOOK.read_text(),
        apt_sources(apt_root).read_text(),
        key.read_text() if key.exists() else "",
    ):
        digest.update(f"{len(part)}\n{part}".encode())
    return BaseImage(os_name, digest.hexdigest())


def missing_tools() -> list[str]:
    """Debian packages image.base needs and this host lacks."""
    return sorted({package for tool, package in TOOLS.items() if not shutil.which(tool)})


def make(os_name: str, progress: sources.Progress = print) -> BaseImage:
    """The cached base image of os_name, made first when absent (as root, ~2 minutes)."""
    image = plan(os_name)
    if image.path.exists() and image.kernel.exists():
        progress(f"{os_name} base image {image.path.name} exists (input hash {image.key[:12]}); nothing to do")
        return image
    if missing := missing_tools():
        raise ImageError(f"image.base needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
    public_key = paths.vagrant_insecure_key().with_suffix(".pub")
    if not public_key.exists():
        raise ImageError(f"Vagrant's insecure public key is not at {public_key}: install vagrant")
    image.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="halab-base-", dir=image.path.parent) as scratch:
        tree, raw = Path(scratch) / "root", Path(scratch) / "disk.raw"
        progress(f"mmdebstrap {SUITES[os_name]} from {apt_sources()} ({len(PACKAGES)} packages and their dependencies)")
        _run(
            [
                "mmdebstrap",
                "--variant=important",
                "--format=directory",
                f"--include={','.join(PACKAGES)}",
                f'--customize-hook=sh {HOOK} "$1" {public_key}',
                SUITES[os_name],
                str(tree),
                str(apt_sources()),
            ],
            "mmdebstrap",
        )
        progress(f"disk: one partition at sector {PARTITION_START}, ext4 labelled root, GRUB in front")
        _disk(tree, raw)
        kernel = sorted((tree / "boot").glob("vmlinuz-*"))[-1]
        shutil.copyfile(kernel, Path(scratch) / "vmlinuz")
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(Path(scratch) / "disk.qcow2")], "qemu-img")
        (Path(scratch) / "vmlinuz").rename(image.kernel)
        (Path(scratch) / "disk.qcow2").rename(image.path)  # last: its presence says the image is whole
    progress(f"{os_name} base image: {image.path}")
    return image


def _disk(tree: Path, raw: Path) -> None:
    """A raw disk: MBR with one bootable partition, the tree as its ext4 file system (labelled
    root), GRUB's boot sector in the MBR's code area and its core image in the gap before it."""
    with raw.open("wb") as disk:
        disk.truncate(SIZE_MIB * 1024 * 1024)
    _run(["sfdisk", "-q", str(raw)], "sfdisk", stdin=f"label: dos\nstart={PARTITION_START}, type=83, bootable\n")
    offset = PARTITION_START * 512
    size_kib = (SIZE_MIB * 1024 * 1024 - offset) // 1024
    _run(
        ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), "-E", f"offset={offset}", str(raw), f"{size_kib}k"],
        "mkfs.ext4",
    )
    boot = (tree / "usr/lib/grub/i386-pc/boot.img").read_bytes()
    core = (tree / "boot/grub/core.img").read_bytes()
    if len(core) > offset - 512:
        raise ImageError(f"GRUB's core image ({len(core)} bytes) does not fit before the partition")
    with raw.open("r+b") as disk:
        disk.write(boot[:446])  # the MBR's code; the partition table after it stays
        disk.seek(512)
        disk.write(core)


def _run(argv: list[str], what: str, stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise ImageError(f"{what} failed ({result.returncode}):\n{tail}")
