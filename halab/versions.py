"""Which keepalived and nginx versions a run uses, and what to say when the host cannot get one.

A version is *explicit* when the user asked for it (HALAB_*_VERSION, or a lab file they
passed) and a *default* when it comes from the default lab. Only `demo` may swap a default
the fetch chain cannot get for the nearest pinned version it can (same major.minor line
first, then the newest): a first run must not fail because the write-up's nginx 1.17.8
lives on one web site. Every other task, and `demo --strict-versions`, refuses, naming the
command that works on this host.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

from halab import environment, pins, sources
from halab.errors import SourceError
from halab.sources import Progress
from halab.spec import Lab, Versions


@dataclass(frozen=True)
class Choice:
    """One product's version: what the lab asked for, what the run uses, and why they differ."""

    name: str
    asked: str
    used: str
    origin: str  # "default", "environment" or "lab file"
    where: str  # where the fetch chain gets `used` ("" when nowhere)

    @property
    def substituted(self) -> bool:
        return self.used != self.asked

    def sentence(self) -> str:
        """The substitution in one line, for the banner and the reports."""
        return (
            f"{self.name} {self.used} instead of the lab's default {self.asked}: {self.asked} cannot be had on "
            f"this host, {self.used} can ({self.where}); set {environment.version_variable(self.name)} to choose"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "substituted": self.substituted}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def nearest(name: str, version: str, progress: Progress = sources.print_nothing) -> tuple[str, str] | None:
    """(version, where) of the pinned version of name closest to `version` that the chain can
    get here: the same major.minor line first (closest patch level), then the newest."""
    line = _key(version)[:2]
    others = [v for v in pins.pinned()[name] if v != version]
    same_line = sorted((v for v in others if _key(v)[:2] == line), key=lambda v: abs(_key(v)[-1] - _key(version)[-1]))
    newest = sorted((v for v in others if _key(v)[:2] != line), key=_key, reverse=True)
    for candidate in [*same_line, *newest]:
        where = sources.available(pins.pin(name, candidate), progress=progress)
        if where:
            return candidate, where
    return None


def origin(name: str, lab_given: bool) -> str:
    """Where the lab's version of name came from: the environment, a lab file the user passed, or the default."""
    if environment.version(name):
        return "environment"
    return "lab file" if lab_given else "default"


def command(overrides: dict[str, str], drop: str = "") -> str:
    """The command line of this run with overrides put in front (and one flag dropped): what would work."""
    launcher = environment.launcher()
    words = [launcher, *(arg for arg in sys.argv[1:] if arg != drop)]
    prefix = " ".join(f"{environment.version_variable(name)}={version}" for name, version in sorted(overrides.items()))
    return f"{prefix} {' '.join(words)}".strip()


def build_hint(name: str, version: str) -> str:
    """The command that builds name version on this host: `invoke build`, or, when the fetch
    chain cannot get that version, the same with the variable choosing the nearest one it can
    (a hint that fails in turn is worse than none)."""
    launcher = environment.launcher()
    if sources.available(pins.pin(name, version), progress=sources.print_nothing):
        return f"`{launcher} build`"
    found = nearest(name, version)
    if found is None:
        return f"nothing here: {name} {version} cannot be had on this host, nor any other pinned {name}"
    variable = f"{environment.version_variable(name)}={found[0]}"
    return (
        f"`{variable} {launcher} build` ({name} {version} cannot be had on this host; "
        f"give every task the same {variable})"
    )


def unavailable(name: str, version: str, how: str) -> SourceError:
    """The one-line refusal for a version the chain cannot get, with the command that works here."""
    found = nearest(name, version)
    if found is None:
        return SourceError(f"{name} {version} ({how}) cannot be had on this host, nor any other pinned {name}")
    return SourceError(
        f"{name} {version} ({how}) cannot be had on this host; {name} {found[0]} can: `{command({name: found[0]})}`"
    )


def resolve(lab: Lab, lab_given: bool, substitute: bool, progress: Progress = print) -> list[Choice]:
    """The version of each product this run uses. Explicit versions are used as asked (the
    build refuses them later if they cannot be had); a default the chain cannot get is
    substituted when `substitute`, refused otherwise."""
    choices = []
    for name, asked in lab.versions.model_dump().items():
        how = origin(name, lab_given)
        where = sources.available(pins.pin(name, asked), progress=progress)
        if where or how != "default":
            choices.append(Choice(name, asked, asked, how, where))
            continue
        found = nearest(name, asked, progress)
        if not substitute or found is None:
            error = unavailable(name, asked, "the lab's default")
            if substitute:
                raise error
            raise SourceError(f"{error} (or drop --strict-versions)")
        choices.append(Choice(name, asked, found[0], how, found[1]))
    return choices


def applied(lab: Lab, choices: list[Choice]) -> Lab:
    """The lab running the chosen versions (the model otherwise unchanged)."""
    return lab.model_copy(update={"versions": Versions(**{c.name: c.used for c in choices})})


def strict(lab: Lab, lab_given: bool) -> None:
    """Refuse, before any work, a lab version the chain cannot get here, naming the command that works."""
    for name, version in lab.versions.model_dump().items():
        if not sources.available(pins.pin(name, version), progress=sources.print_nothing):
            how = {"default": "the lab's default", "environment": f"set by {environment.version_variable(name)}"}
            raise unavailable(name, version, how.get(origin(name, lab_given), "the lab file's"))
