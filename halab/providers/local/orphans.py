"""Local-lab leftovers that belong to no checkout: found from the host alone.

Every name a local lab takes on the host carries its checkout's id (paths.checkout_id):
the namespace `halab-<id>-<lab>` and each guest's tag `umid=halab_<id>_<lab>_<node>`. A
registry on /run (a tmpfs, like the namespaces) maps each id to its state directory; a
name whose id has no registered state directory that still exists is an orphan: its
checkout was deleted (or moved) while the lab ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from halab import paths
from halab.providers.local import netns
from halab.providers.local.processes import kill_all, processes

NAMESPACE = re.compile(r"^halab-([0-9a-f]{6})-([a-z][a-z0-9-]*)$")
GUEST = re.compile(rb"umid=halab_([0-9a-f]{6})_([a-z][a-z0-9-]*)_")


def register() -> None:
    """Record this checkout's state directory under its id (before anything is started)."""
    paths.REGISTRY.mkdir(parents=True, exist_ok=True)
    (paths.REGISTRY / paths.checkout_id()).write_text(str(paths.labs().resolve()))


def _owned(checkout: str) -> bool:
    entry = paths.REGISTRY / checkout
    return entry.exists() and Path(entry.read_text().strip()).is_dir()


@dataclass(frozen=True, order=True)
class Orphan:
    checkout: str
    lab: str

    @property
    def netns(self) -> str:
        return f"halab-{self.checkout}-{self.lab}"

    @property
    def tag(self) -> str:
        return f"umid=halab_{self.checkout}_{self.lab}_"


def find() -> list[Orphan]:
    """Namespaces and guests of the project whose checkout no longer exists."""
    found = set()
    for name in netns.names():
        named = NAMESPACE.match(name)
        if named:
            found.add((named[1], named[2]))
    for pid in processes("umid=halab_"):
        try:
            tagged = GUEST.search(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
        if tagged:
            found.add((tagged[1].decode(), tagged[2].decode()))
    return sorted(Orphan(checkout, lab) for checkout, lab in found if not _owned(checkout))


def remove(orphan: Orphan) -> None:
    """Its guests, the ssh helpers entering its namespace, then the namespace (and its taps)."""
    kill_all(orphan.tag)
    kill_all(f"ip netns exec {orphan.netns} ")
    netns.delete(orphan.netns)
