"""invoke collections: one module per namespace, no logic (each task calls the package).

Every task is declared with `task` below: invoke's decorator, plus the rules every task
keeps: an expected failure (a HalabError) ends as one clear message and its exit code,
never a traceback; and a short flag means the same option in every task (SHORT_FLAGS).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import invoke

from halab import spec
from halab.errors import HalabError, UsageError
from halab.providers import NAMES, Provider, current, make

# The project's short flags: one letter, one option, in every task. invoke would give each
# option the first letter still free in its own task, so -d meant --destroy in one task and
# --dry-run or --deprecate-days in others, and -k --keep or --kms-key. Options not listed
# here have only their long flag.
SHORT_FLAGS = {
    "lab": "l",
    "provider": "p",
    "destroy": "d",
    "node": "n",
    "all": "a",
    "format": "f",
    "output": "o",
    "keep": "k",
    "scenario": "s",
    "regions": "r",
    "manifest": "m",
    "target": "t",
    "var": "v",
}


class Task(invoke.Task):
    """invoke's Task whose short flags come from SHORT_FLAGS only, never from first letters."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        letter = SHORT_FLAGS.get(opts["names"][0])
        opts["names"] += [letter] if letter else []
        if opts.get("kind") is int:
            opts["kind"] = whole_number(opts["names"][0])
        return opts


class _IntLike(type):
    """A type that invoke's help takes for int (it looks kinds up in {str: ..., int: "INT"})."""

    def __eq__(cls, other: object) -> bool:
        return other is int or type.__eq__(cls, other) is True

    def __hash__(cls) -> int:
        return hash(int)


def whole_number(option: str) -> type[int]:
    """An int option's type whose parse error is one line naming the option (invoke's own
    int() would end in a traceback): `--retain x`, `--lines 1e9`."""
    flag = "--" + option.replace("_", "-")

    class WholeNumber(int, metaclass=_IntLike):
        def __new__(cls, text: str) -> WholeNumber:
            try:
                return super().__new__(cls, text)
            except ValueError:
                raise invoke.ParseError(f"{flag} takes a whole number; got {text!r}") from None

    return WholeNumber


LAB_HELP = {
    "lab": "lab file (YAML); default: the lab this checkout has up, if just one is; else labs/seed.yaml, the write-up's"
}
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

        return invoke.task(klass=Task, auto_shortflags=False, **kwargs)(run)

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
    """The lab model of the --lab file; without one, the lab this checkout has up (the only
    one), else the seed lab. `--lab ""` is a mistake, not the default."""
    if lab is not None and not lab.strip():
        raise UsageError("--lab needs a lab file, e.g. --lab labs/unicast.yaml; leave it out for the seed lab")
    if lab is None and (up := current()) is not None:
        print(f"(lab {up.name!r}: the one up in this checkout; --lab FILE for another)", file=sys.stderr)
        return up
    return spec.load(lab)


def provider_for(lab: str | None, provider: str, progress: Callable[[str], None] = print) -> Provider:
    """The named provider running the lab of the --lab file."""
    return make(load(lab), provider, progress)
