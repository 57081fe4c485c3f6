"""Lab providers: the same lab on different machinery, behind one contract (base.Provider)."""

from __future__ import annotations

from typing import Callable

from halab.providers.base import Provider, ProviderError
from halab.spec import Lab

NAMES = ("local", "vagrant")


def make(lab: Lab, name: str = "local", progress: Callable[[str], None] = print) -> Provider:
    """The provider called name for lab; unknown names get the list of known ones."""
    if name == "local":
        from halab.providers.local import LocalProvider
        return LocalProvider(lab, progress)
    if name == "vagrant":
        from halab.providers.vagrant import VagrantProvider
        return VagrantProvider(lab, progress)
    raise ProviderError(f"unknown provider {name!r}; known: {', '.join(NAMES)}")
