"""invoke collections: one module per namespace, no logic (each task calls the package).

Every task is declared with `task` below: invoke's decorator, plus the rules every task
keeps: an expected failure (a HalabError) ends as one clear message and its exit code,
never a traceback; and a short flag means the same option in every task (SHORT_FLAGS).
"""

from __future__ import annotations

import functools
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import invoke

from halab import spec
from halab.errors import HalabError, UsageError, shown
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


# Every whole-number option and the values it takes. A value outside (a negative count;
# 99999999 days, which overflowed a date) is refused as it is parsed, as a non-number is.
WHOLE_NUMBERS = {"retain": (0, 1000), "deprecate-days": (0, 3650), "lines": (1, 100_000)}
# What no option value holds: a line end or another control character (they split a
# message, a log line, a generated file, or a shell line in two; Python's splitlines ends
# a line at C1's NEL and at U+2028/U+2029 too), or bytes that are not UTF-8 (surrogates).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class Task(invoke.Task):
    """invoke's Task whose short flags come from SHORT_FLAGS only, never from first letters."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        letter = SHORT_FLAGS.get(opts["names"][0])
        opts["names"] += [letter] if letter else []
        if opts.get("kind") is int:
            opts["kind"] = whole_number(opts["names"][0])
            low, high = WHOLE_NUMBERS[opts["names"][0]]
            opts["help"] = f"{opts.get('help') or 'a whole number'}; {low} to {high}"
        return opts


class _IntLike(type):
    """A type that invoke's help takes for int (it looks kinds up in {str: ..., int: "INT"})."""

    def __eq__(cls, other: object) -> bool:
        return other is int or type.__eq__(cls, other) is True

    def __hash__(cls) -> int:
        return hash(int)


def flag(option: str) -> str:
    """The command-line flag of a task parameter: `deprecate_days` is --deprecate-days, `all_` --all."""
    return "--" + option.rstrip("_").replace("_", "-")


def whole_number(option: str) -> type[int]:
    """An int option's type: a whole number within WHOLE_NUMBERS[option], else one line naming
    the option and its range, with a usage error's exit code (invoke's own int() ended in a
    traceback: `--retain x`, `--lines 1e9`)."""
    if option not in WHOLE_NUMBERS:
        raise TypeError(f"the whole-number option {flag(option)} needs its range in WHOLE_NUMBERS")
    low, high = WHOLE_NUMBERS[option]

    class WholeNumber(int, metaclass=_IntLike):
        def __new__(cls, text: str) -> WholeNumber:
            if re.fullmatch(r"-?[0-9]{1,9}", text.strip()) and low <= int(text) <= high:
                return super().__new__(cls, text)
            message = f"{flag(option)} takes a whole number from {low} to {high}; got {shown(text)}"
            raise invoke.Exit(message, code=UsageError.exit_code)

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
                plain(call_kwargs)
                return body(*call_args, **call_kwargs)
            except HalabError as exc:
                raise invoke.Exit(str(exc), code=exc.exit_code) from None

        return invoke.task(klass=Task, auto_shortflags=False, **kwargs)(run)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


def plain(options: dict[str, Any]) -> None:
    """Refuse an option value with a line end or another control character, whatever the option."""
    for option, value in options.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and CONTROL.search(text):
                raise UsageError(f"{flag(option)} {shown(text)}: no line ends or other control characters allowed")


def words(args: str) -> list[str]:
    """--args as a shell splits words (quotes group them), for a command no shell reads: a
    `;` or `$(...)` in them is an argument like any other."""
    try:
        return shlex.split(args)
    except ValueError as exc:
        raise UsageError(f"--args {shown(args)}: {exc}; quote as a shell would, e.g. --args \"-k 'a or b'\"") from None


def key_values(items: list[str], flag: str, example: str) -> dict[str, str]:
    """A repeatable KEY=VALUE option; an item without `=` or with an empty key is refused, not dropped."""
    bad = [item for item in items if not item.partition("=")[0] or "=" not in item]
    if bad:
        raise UsageError(f"{flag} takes {example}; got {', '.join(shown(b) for b in bad)}")
    keys = [item.partition("=")[0] for item in items]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise UsageError(f"{flag} sets {', '.join(shown(key) for key in twice)} more than once; set each once")
    return dict(item.split("=", 1) for item in items)


def load(lab: str | None) -> spec.Lab:
    """The lab model of the --lab file; without one, the lab this checkout has up (the only
    one), else the seed lab. `--lab ""` is a mistake, not the default."""
    if lab is not None and not lab.strip():
        raise UsageError("--lab needs a lab file, e.g. --lab labs/unicast.yaml; leave it out for the seed lab")
    if lab is None and (up := current()) is not None:
        print(f"(lab {up.name!r}: the one up in this checkout; --lab FILE for another)", file=sys.stderr)
        return up
    return spec.load(lab_file(lab) if lab is not None else None)


def lab_file(lab: str) -> Path:
    """The --lab file, which must exist: a missing one is named on one line (the lab file's
    own problems are the lab file's message: every one of them)."""
    return existing_file(lab, "lab", "a lab file (YAML), e.g. --lab labs/unicast.yaml; leave it out for the seed lab")


def existing_file(value: str, option: str, what: str) -> Path:
    """A file option's value: a file that exists. An empty value is a mistake, not the default."""
    path = Path(value)
    if not value.strip() or not _is(path.is_file):
        raise UsageError(f"{flag(option)} {shown(value)}: not an existing file; it takes {what}")
    return path


def output_file(value: str, option: str) -> Path:
    """A file to write: its directory exists, and it is not a directory itself."""
    path = Path(value)
    if not value.strip() or not _is(path.parent.is_dir) or _is(path.is_dir) or len(path.name) > 255:
        raise UsageError(
            f"{flag(option)} {shown(value)}: not a file name in an existing directory; e.g. {flag(option)} lab.ini"
        )
    return path


def _is(check: Callable[[], bool]) -> bool:
    """A path test; a name the file system cannot hold (too long) is not there either."""
    try:
        return check()
    except OSError:
        return False


def provider_for(lab: str | None, provider: str, progress: Callable[[str], None] = print) -> Provider:
    """The named provider running the lab of the --lab file."""
    return make(load(lab), provider, progress)
