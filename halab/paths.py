"""One owner for every path the project reads or writes.

Nothing else builds a path by hand: the state of a lab, the build cache and the files a
provider generates all come from here, so `down` can find everything `up` made.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAB = ROOT / "labs" / "seed.yaml"
PROVISION = ROOT / "provision"
PACKER = ROOT / "packer"
# On the client node, on every provider: where its SMTP server keeps keepalived's mail (Maildir).
GUEST_MAILDIR = "/var/spool/mail/halab"


def home() -> Path:
    """Where state and caches live: $HALAB_HOME, else .halab in the checkout."""
    return Path(os.environ.get("HALAB_HOME", ROOT / ".halab"))


def images() -> Path:
    """Packer's outputs: boxes, disk images and manifest.json (what ami.publish reads)."""
    return home() / "images"


class LabPaths:
    """The files of one lab, under <home>/labs/<name>/."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.root = home() / "labs" / name

    @property
    def rendered(self) -> Path:
        """The files `lab.render` writes: one tree per node, mirroring the node's filesystem."""
        return self.root / "rendered"

    def node_files(self, node: str) -> Path:
        return self.rendered / node

    @property
    def ssh(self) -> Path:
        """Per-lab keys, sshd_config, known_hosts and the ssh_config users and tests use."""
        return self.root / "ssh"

    @property
    def ssh_config(self) -> Path:
        return self.ssh / "ssh_config"

    @property
    def nodes(self) -> Path:
        return self.root / "nodes"

    def node(self, node: str) -> Path:
        """A node's writable host directory: node.env, console, logs, readiness markers."""
        return self.nodes / node

    @property
    def artifacts(self) -> Path:
        """Reports (JSON, JUnit XML, PNG timelines) and the logs collected from the nodes."""
        return self.root / "artifacts"

    @property
    def uml(self) -> Path:
        """UML's own runtime directory (uml_dir): pid files and mconsole sockets."""
        return self.root / "uml"

    @property
    def netns(self) -> str:
        """The private network namespace holding the lab's switch."""
        return f"halab-{self.name}"
