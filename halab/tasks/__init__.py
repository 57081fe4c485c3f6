"""invoke collections: one module per namespace, no logic (each task calls the package).

Every task is declared with `task` below: invoke's decorator, plus the one rule every
task keeps: an expected failure (a HalabError) ends as one clear message and its exit
code, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import invoke

from halab import spec
from halab.errors import HalabError, UsageError
from halab.providers import NAMES, Provider, make

LAB_HELP = {"lab": "lab file (YAML); default: labs/seed.yaml, the write-up's lab"}
PROVIDER_HELP = {
    "provider": f"what runs the lab: {' or '.join(NAMES)} (default: local, user-mode Linux on "
    "this host; vagrant: libvirt/VirtualBox VMs)"
}


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's @task (bare or with options) whose HalabErrors become invoke Exits."""

    def decorate(body: Callable[..., Any]) -> invoke.Task:
        @functools.wraps(body)
        def run(*call_args: Any, **call_kwargs: Any) -> Any:
            try:
                return body(*call_args, **call_kwargs)
            except HalabError as exc:
                raise invoke.Exit(str(exc), code=exc.exit_code) from None

        return invoke.task(**kwargs)(run)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


def key_values(items: list[str], flag: str, example: str) -> dict[str, str]:
    """A repeatable KEY=VALUE option; an item without `=` or with an empty key is refused, not dropped."""
    bad = [item for item in items if not item.partition("=")[0] or "=" not in item]
    if bad:
        raise UsageError(f"{flag} takes {example}; got {', '.join(repr(b) for b in bad)}")
    return dict(item.split("=", 1) for item in items)


def load(lab: str | None) -> spec.Lab:
    """The lab model of the --lab file (default: the seed lab); `--lab ""` is a mistake, not the default."""
    if lab is not None and not lab.strip():
        raise UsageError("--lab needs a lab file, e.g. --lab labs/unicast.yaml; leave it out for the seed lab")
    return spec.load(lab)


def provider_for(lab: str | None, provider: str, progress: Callable[[str], None] = print) -> Provider:
    """The named provider running the lab of the --lab file."""
    return make(load(lab), provider, progress)
