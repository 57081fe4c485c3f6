"""Lab providers: the same lab on different machinery, behind one base class (base.Provider).

Only this package looks inside a provider; everything else asks for one by name here.
"""

from __future__ import annotations

from halab.errors import UsageError
from halab.providers.base import Progress, Provider
from halab.spec import Lab

NAMES = ("local", "vagrant")


def kind(name: str) -> type[Provider]:
    """The provider class called name; unknown names get the list of known ones."""
    if name == "local":
        from halab.providers.local.provider import LocalProvider

        return LocalProvider
    if name == "vagrant":
        from halab.providers.vagrant import VagrantProvider

        return VagrantProvider
    raise UsageError(f"unknown provider {name!r}; known: {', '.join(NAMES)}")


def make(lab: Lab, name: str = "local", progress: Progress = print) -> Provider:
    """The provider called name, running lab."""
    return kind(name)(lab, progress)
