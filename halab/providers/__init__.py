"""Lab providers: the same lab on different machinery, behind one base class (base.Provider).

Only this package looks inside a provider; everything else asks for one by name here.
"""

from __future__ import annotations

import json

from halab import paths
from halab.errors import UsageError
from halab.paths import LabPaths
from halab.providers.base import Progress, Provider
from halab.spec import Lab

NAMES = ("local", "vagrant")


def kind(name: str) -> type[Provider]:
    """The provider class called name; unknown names get the list of known ones."""
    if name == "local":
        from halab.providers.local.provider import LocalProvider

        return LocalProvider
    if name == "vagrant":
        from halab.providers.vagrant.provider import VagrantProvider

        return VagrantProvider
    raise UsageError(f"unknown provider {name!r}; known: {', '.join(NAMES)}")


def checkout_labs() -> list[str]:
    """The names of every lab this checkout has state for (booted at least once)."""
    return sorted(p.name for p in paths.labs().iterdir() if p.is_dir()) if paths.labs().exists() else []


def current() -> Lab | None:
    """The lab as run of the one lab this checkout has up, for commands given no --lab (day-2
    use need not repeat it); None when none is up. Several up: UsageError naming them."""
    up = [name for name in checkout_labs() if LabPaths(name).as_run.exists() and footprint(name)]
    if len(up) > 1:
        raise UsageError(f"labs {', '.join(up)} are up in this checkout: say which with --lab FILE")
    return Lab.model_validate(json.loads(LabPaths(up[0]).as_run.read_text())) if up else None


def down_everywhere(name: str) -> None:
    """Tear down the lab called name on every provider (each is a no-op where it has nothing)."""
    for provider in NAMES:
        kind(provider).down_by_name(name)


def footprint(name: str) -> str:
    """What the lab called name has on this host, on every provider ("" when nothing)."""
    return "; ".join(part for part in (kind(p).footprint(LabPaths(name)) for p in NAMES) if part)


def remove_orphans() -> list[str]:
    """Remove the local-lab guests and namespaces whose checkout no longer exists; what was removed."""
    from halab.providers.local import orphans

    found = orphans.find()
    for orphan in found:
        orphans.remove(orphan)
    return [f"lab {o.lab!r} of checkout {o.checkout} (namespace {o.netns})" for o in found]


def make(lab: Lab, name: str = "local", progress: Progress = print, **settings: str) -> Provider:
    """The provider called name, running lab; settings are that provider's own (vagrant: hypervisor)."""
    return kind(name)(lab, progress, **settings)
