"""One owner for every path the project reads or writes, and every name a lab takes on the host.

Nothing else builds a path by hand: the project's own files, the caches, the state of a
lab (including each provider's files), evidence and images all come from here, so `down`
can find everything `up` made and `HALAB_HOME` moves all of it at once. Likewise the
names outside the state directory (namespaces, guest tags, VMs, libvirt networks): made
and parsed back here only, so teardown and the orphan sweep match exactly what `up` made.
Paths and names that other languages need (the Vagrantfile, guest scripts) are handed to
them from here.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

from halab import environment
from halab.errors import UsageError

# --- the project's own files ----------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
DEFAULT_LAB = LABS / "seed.yaml"
PINS = ROOT / "pins.yaml"
PROVISION = ROOT / "provision"
PACKER = ROOT / "packer"
PACKAGE = Path(__file__).resolve().parent
GUEST_INIT = PACKAGE / "providers" / "local" / "guest.sh"
AGENT = PACKAGE / "prove" / "agent.py"
ACCEPTANCE = PACKAGE / "prove" / "acceptance"

# Lab and node names: what a lab file allows (spec.Name), and all a path is built from.
NAME = re.compile(r"[a-z][a-z0-9-]{0,14}")
NAME_RULE = "1-15 characters: a lowercase letter, then lowercase letters, digits or '-'"

# --- inside the nodes, on every provider ----------------------------------------------
# Where the client's SMTP server keeps keepalived's mail (Maildir).
GUEST_MAILDIR = "/var/spool/mail/halab"
# Where a Vagrant VM sees the state directory (synced from the host).
GUEST_STATE = "/halab"
# Where a Vagrant VM sees the checkout (synced from the host): provision/ runs from there,
# whole, since its scripts source lib.sh beside them.
GUEST_PROJECT = "/vagrant"


def home() -> Path:
    """Where state and caches live: $HALAB_HOME (checked: halab.environment), else .halab in the checkout."""
    return environment.home(LABS) or ROOT / ".halab"


def sources() -> Path:
    """Verified upstream tarballs."""
    return home() / "cache" / "sources"


def builds() -> Path:
    """Finished host builds, one directory per pin and build key."""
    return home() / "cache" / "builds"


def apt_state() -> Path:
    """The private apt state the fetch chain uses for source packages."""
    return home() / "cache" / "apt"


def evidence() -> Path:
    """One record per acceptance / failover run: what ami.publish checks before publishing."""
    return home() / "evidence"


def packer_cache() -> Path:
    """Packer's own cache (PACKER_CACHE_DIR), which it would otherwise make in the working directory."""
    return home() / "cache" / "packer"


def images() -> Path:
    """Packer's outputs: boxes, disk images and manifest.json (what ami.publish reads)."""
    return home() / "images"


def manifest() -> Path:
    """Packer's manifest: every image built, with its input hash."""
    return images() / "manifest.json"


def publish_record() -> Path:
    """Where ami.publish writes region -> AMI for deploy tooling."""
    return images() / "publish.json"


def uml_preloads() -> Path:
    """Libraries the local lab preloads into linux.uml, compiled here (one per source hash)."""
    return home() / "cache" / "uml"


def base_images() -> Path:
    """Bootable base disk images (Debian's, made from the host's archive), one per input hash,
    each with the kernel it boots beside it (what the KVM probe boots)."""
    return home() / "cache" / "base"


def base_image(os_name: str, key: str) -> Path:
    """The base disk image of os_name whose inputs hash to key (qcow2)."""
    return base_images() / f"{os_name}-{key[:16]}.qcow2"


def probe_kernels() -> list[Path]:
    """Kernels a KVM probe can boot: the host's own, then those of the base images, newest first."""
    found = sorted(Path("/boot").glob("vmlinuz-*"), reverse=True)
    found += sorted(base_images().glob("*.vmlinuz"), key=lambda path: path.stat().st_mtime, reverse=True)
    return found


def vagrant_insecure_key() -> Path:
    """Vagrant's well-known insecure private key (shipped with Vagrant): how Packer and a first
    `vagrant up` log in to a box before Vagrant replaces it with a key of its own."""
    found = sorted(Path("/usr/share/rubygems-integration/all/gems").glob("vagrant-*/keys/vagrant"))
    found += sorted(Path("/opt/vagrant/embedded/gems").glob("gems/vagrant-*/keys/vagrant"))
    return found[-1] if found else Path("/usr/share/rubygems-integration/all/gems/vagrant/keys/vagrant")


def box_metadata(os_name: str, target: str) -> Path:
    """What `vagrant box add` reads for a box Packer built."""
    return images() / f"halab-{os_name}-{target}.json"


def labs() -> Path:
    return home() / "labs"


def durations() -> Path:
    """How long each stage of long work last took on this host: what progress estimates from."""
    return home() / "durations.json"


def checkout_id() -> str:
    """A short digest of this checkout's state directory: part of every name a lab takes on
    the host (namespace, guests' tags), so labs of the same name from two checkouts never
    meet, and teardown only ever touches its own."""
    return hashlib.sha256(str(labs().resolve()).encode()).hexdigest()[:6]


# --- the names a lab takes on the host, outside its state directory -----------------------
# Network namespaces, libvirt's VMs and networks: `halab-<checkout>-<lab>.<kind>` (a VM's
# kind followed by `-<node>`). The checkout id keeps two checkouts' labs of the same name
# apart on a shared host; the kind comes after a `.`, which no lab name holds, so a name of
# one lab or kind is never another's (`x.nat` is no lab called `x-nat`), and each parses back.
CHECKOUT = "[0-9a-f]{6}"
LOCAL_NAMESPACE = "local"  # the local lab's switch
VMS_NAMESPACE = "vms"  # a Vagrant lab's private libvirt, its networks and VMs
LAB_NETWORK = "net"  # a Vagrant lab's libvirt (or VirtualBox internal) network
NAT_NETWORK = "nat"  # a NAT lab's second network, the real servers'
VM = "vm"  # a Vagrant lab's VM (libvirt domain): vm-<node>
KINDS = (LOCAL_NAMESPACE, VMS_NAMESPACE, LAB_NETWORK, NAT_NETWORK, VM)
_HOST_NAME = re.compile(
    rf"halab-(?P<checkout>{CHECKOUT})-(?P<lab>{NAME.pattern})\.(?P<kind>[a-z]+)(?:-(?P<node>{NAME.pattern}))?"
)
# A local-lab guest's tag (UML's umid): `_` separates, as no name holds one.
_GUEST_TAG = re.compile(rf"halab_(?P<checkout>{CHECKOUT})_(?P<lab>{NAME.pattern})_(?P<node>{NAME.pattern})")
GUEST = "guest"  # the kind parse_guest_tag answers


class HostName(NamedTuple):
    """A host-side name read back: whose checkout and lab it is, and what (node: a VM's or guest's)."""

    checkout: str
    lab: str
    kind: str
    node: str = ""


def host_name(checkout: str, lab: str, kind: str, node: str = "") -> str:
    """The name of one of a lab's host-side things; node for a VM only (with none, a VM's name
    is the prefix every VM of the lab shares)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of host name {kind!r}")
    return f"halab-{checkout}-{lab}.{kind}" + ("-" + node if kind == VM else "")


def parse_host_name(name: str) -> HostName | None:
    """(checkout, lab, kind[, node]) of a name host_name made; None for any other name."""
    found = _HOST_NAME.fullmatch(name)
    if not found or found["kind"] not in KINDS or (found["kind"] == VM) != (found["node"] is not None):
        return None
    return HostName(found["checkout"], found["lab"], found["kind"], found["node"] or "")


def guest_tag(checkout: str, lab: str, node: str = "") -> str:
    """A local-lab guest's tag on its command line (UML's umid); with no node, the prefix every
    guest of the lab carries. `_` cannot occur in names, so labs never match each other."""
    return f"halab_{checkout}_{lab}_{node}"


def parse_guest_tag(tag: str) -> HostName | None:
    """(checkout, lab, GUEST, node) of a guest's tag; None for any other word."""
    found = _GUEST_TAG.fullmatch(tag)
    return HostName(found["checkout"], found["lab"], GUEST, found["node"]) if found else None


# Which state directory each checkout id belongs to (a tmpfs, like the namespaces it
# describes): how `lab.down --orphans` tells a live checkout's lab from an orphan's.
REGISTRY = Path("/run/halab")
LATEST = "latest"  # under a lab's artifacts: the newest run's folder
REPORT = "report.html"  # in a run's folder: the one page a person opens (halab.prove.page)
TOPOLOGY = "topology.png"  # in a run's folder: the lab's drawing the page embeds
RUN_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")  # what a run's folder is named after: failover, acceptance-suite


def in_guest(path: Path) -> str:
    """A path under the state directory as a Vagrant VM sees it (the state dir is synced to GUEST_STATE)."""
    return f"{GUEST_STATE}/{path.relative_to(home()).as_posix()}"


def project_sync_excludes() -> list[str]:
    """What syncing the checkout into a VM leaves out: git, the venv, and the state directory
    when it lives inside the checkout (it is synced on its own)."""
    excluded = [".git/", ".venv/"]
    if home().resolve().is_relative_to(ROOT):
        excluded.append(f"{home().resolve().relative_to(ROOT).as_posix()}/")
    return excluded


# The state directory's parts a VM never needs (it reads the sources and its rendered files):
# host builds, apt state, base images, images, evidence, and each lab's guests' logs, ssh
# keys and sockets, Vagrant and libvirt state and reports.
STATE_SYNC_EXCLUDES = [
    "cache/builds/", "cache/apt/", "cache/base/", "cache/packer/", "cache/uml/", "images/", "evidence/",
    "labs/*/nodes/", "labs/*/ssh/", "labs/*/vagrant/", "labs/*/libvirt/", "labs/*/artifacts/",
]  # fmt: skip


class NodeFiles:
    """A local-lab node's host directory: settings in, console, logs and readiness markers out."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = directory / "node.env"  # the guest init's settings, written by the provider
        self.console = directory / "console.log"  # the guest kernel's console
        self.boot_log = directory / "boot.log"  # the guest init's own output
        self.logs = directory / "log"  # the guest's /var/log
        self.linked = directory / "linked"  # the provider plugged the guest into the switch
        self.ready = directory / "ready"  # the guest init finished its role, every step verified
        self.failed = directory / "failed"  # or: the step of its role that failed

    @property
    def markers(self) -> tuple[Path, ...]:
        """What says a boot happened; removed before a boot and at teardown."""
        return (self.linked, self.ready, self.failed)


def checked_name(name: str, what: str = "lab") -> str:
    """name, if it can be part of a path under the state directory; UsageError otherwise (before
    any path exists: `--name ../../tmp/x` never reaches the filesystem)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = repr(name[:40]) + (f"... ({len(name)} characters)" if len(name) > 40 else "")
        raise UsageError(f"{shown} is not a {what} name: {NAME_RULE}")
    return name


class LabPaths:
    """The files of one lab, under <home>/labs/<name>/ (name checked: it never escapes)."""

    def __init__(self, name: str) -> None:
        self.name = checked_name(name)
        self.root = labs() / name
        self.checkout = checkout_id()

    @property
    def rendered(self) -> Path:
        """The files `lab.render` writes: one tree per node, mirroring the node's filesystem."""
        return self.root / "rendered"

    def node_files(self, node: str) -> Path:
        return self.rendered / node

    @property
    def imported(self) -> Path:
        """The files `lab.import` brought, which nodes run verbatim (`Node.files`)."""
        return self.root / "imported"

    @property
    def lab_json(self) -> Path:
        """The rendered lab as data: what the Vagrantfile reads."""
        return self.rendered / "lab.json"

    @property
    def as_run(self) -> Path:
        """The lab as booted (the provider's view of the file, as JSON): what a running lab is
        compared with before anything is done to it or judged on it."""
        return self.root / "as-run.json"

    @property
    def ssh(self) -> Path:
        """Per-lab keys, sshd_config, known_hosts and the ssh_config users and tests use."""
        return self.root / "ssh"

    @property
    def ssh_config(self) -> Path:
        return self.ssh / "ssh_config"

    @property
    def control_dir(self) -> Path:
        """Where the lab's ssh master connections live: under /run, not the state directory, as a
        socket's path may not exceed 107 bytes and HALAB_HOME may be deep."""
        return REGISTRY / "ssh" / f"{self.checkout}-{self.name}"

    @property
    def control_sockets(self) -> str:
        """ssh's ControlPath pattern: one master connection per node (a master's process title is
        this path, which is how teardown finds it)."""
        return f"{self.control_dir}/%C"

    @property
    def nodes(self) -> Path:
        return self.root / "nodes"

    def node(self, node: str) -> NodeFiles:
        """A node's writable host directory and the files in it."""
        return NodeFiles(self.nodes / checked_name(node, "node"))

    @property
    def artifacts(self) -> Path:
        """Every run's folder (reports, node logs), `latest` (a link to the newest), and what
        is not a run's: the pipeline's stage table, the topology drawing."""
        return self.root / "artifacts"

    @property
    def latest(self) -> Path:
        """The newest run's folder (a symbolic link to it)."""
        return self.artifacts / LATEST

    def new_run(self, what: str) -> Path:
        """A fresh folder for one run (`<UTC time>-<what>`, -2, -3... if taken), made the latest:
        nothing of an earlier run ever sits beside a later one's files."""
        if not RUN_KIND.fullmatch(what):  # the project's own words (failover, acceptance-suite), never input
            raise UsageError(f"{what!r} is not a kind of run: a lowercase letter, then up to 31 of a-z 0-9 -")
        stamp = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{what}"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        run, number = self.artifacts / stamp, 1
        while True:
            try:
                run.mkdir()
                break
            except FileExistsError:
                number += 1
                run = self.artifacts / f"{stamp}-{number}"
        link = self.artifacts / f".{LATEST}-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(run.name)
        link.replace(self.latest)  # atomic: `latest` always names a whole run
        return run

    @property
    def uml(self) -> Path:
        """UML's own runtime directory (uml_dir): pid files and mconsole sockets."""
        return self.root / "uml"

    @property
    def vagrant(self) -> Path:
        """Vagrant's own state for this lab (VAGRANT_DOTFILE_PATH): labs live side by side."""
        return self.root / "vagrant"

    @property
    def netns(self) -> str:
        """The private network namespace holding the local lab's switch (this checkout's)."""
        return host_name(self.checkout, self.name, LOCAL_NAMESPACE)

    def guest_tag(self, node: str = "") -> str:
        """A local-lab guest's tag (UML's umid); with no node, every guest's prefix (guest_tag)."""
        return guest_tag(self.checkout, self.name, node)

    @property
    def libvirt(self) -> Path:
        """A private libvirt's pid files and logs, where the host runs no libvirt service."""
        return self.root / "libvirt"

    @property
    def libvirt_netns(self) -> str:
        """The private network namespace a private libvirt, its networks and every vagrant and
        ssh call of the Vagrant lab run in (apart from the local lab's, so both can exist)."""
        return host_name(self.checkout, self.name, VMS_NAMESPACE)

    def vm(self, node: str = "") -> str:
        """A Vagrant lab's VM as libvirt names it; with no node, the prefix all of them share
        (vagrant-libvirt's default_prefix: the VM's name is it plus the node's)."""
        return host_name(self.checkout, self.name, VM, node)

    @property
    def network(self) -> str:
        """The Vagrant lab's network (libvirt's, or VirtualBox's internal one)."""
        return host_name(self.checkout, self.name, LAB_NETWORK)

    @property
    def nat_network(self) -> str:
        """A NAT lab's second network, the real servers' own."""
        return host_name(self.checkout, self.name, NAT_NETWORK)

    @property
    def pipeline(self) -> Path:
        """test.pipeline's stage table (text and JSON), beside the run's other reports."""
        return self.artifacts / "pipeline"


def shipped_labs() -> list[Path]:
    """Every lab file the project ships (labs/*.yaml), the seed first, then by name: the one list
    the tests prove (acceptance, `vagrant validate`, the daemons' config tests, the fuzzer), so a
    lab added to labs/ is proven everywhere."""
    return sorted(LABS.glob("*.yaml"), key=lambda path: (path != DEFAULT_LAB, path.name))
