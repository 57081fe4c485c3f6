"""Local-lab leftovers that belong to no checkout: found from the host alone.

Every name a local lab takes on the host carries its checkout's id (paths.checkout_id):
its namespace (paths.host_name, kind LOCAL_NAMESPACE) and each guest's tag (`umid=`
paths.guest_tag). A registry on /run (a tmpfs, like the namespaces) maps each id to its
state directory; a name whose id has no registered state directory that still exists is
an orphan: its checkout was deleted (or moved) while the lab ran. Only local-lab names
count: a Vagrant lab's private libvirt namespace is its own provider's to remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halab import paths
from halab.providers.local import netns
from halab.providers.local.processes import arguments, kill_all

UMID = "umid="  # how a guest's tag appears on its command line


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
        return paths.host_name(self.checkout, self.lab, paths.LOCAL_NAMESPACE)

    @property
    def tag(self) -> str:
        """What every guest of the lab carries on its command line."""
        return UMID + paths.guest_tag(self.checkout, self.lab)


def find() -> list[Orphan]:
    """Local-lab namespaces and guests whose checkout no longer exists."""
    named = [paths.parse_host_name(name) for name in netns.names()]
    tagged = [paths.parse_guest_tag(word.removeprefix(UMID)) for word in arguments(UMID + "halab_")]
    found = {(n.checkout, n.lab) for n in named if n is not None and n.kind == paths.LOCAL_NAMESPACE}
    found |= {(t.checkout, t.lab) for t in tagged if t is not None}
    return sorted(Orphan(checkout, lab) for checkout, lab in found if not _owned(checkout))


def remove(orphan: Orphan) -> None:
    """Its guests, the ssh helpers entering its namespace, then the namespace (and its taps)."""
    kill_all(orphan.tag)
    kill_all(f"ip netns exec {orphan.netns} ")
    netns.delete(orphan.netns)
