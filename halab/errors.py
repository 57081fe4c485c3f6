"""Every failure the project expects, under one base class.

Tasks catch `HalabError` and print its message with its exit code: an expected failure
never reaches a user as a traceback. Each kind says which stage failed; `exit_code`
tells bad input (2) from a failure of the work itself (1).
"""

from __future__ import annotations

from dataclasses import dataclass


def shown(value: str, width: int = 60) -> str:
    """A value as a one-line message quotes it: repr (a line end shows as \\n), cut to width."""
    return repr(value[:width]) + ("..." if len(value) > width else "")


class HalabError(Exception):
    """A failure with a message a person can act on."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a lab file: the field's path (`nodes.server3.priority`) and what to do."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(HalabError):
    """A lab file that cannot be used; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, source: str, problems: list[Problem], note: str = "") -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"] + [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines + ([note] if note else [])))


class UsageError(HalabError):
    """A task argument that cannot be used (unknown node, bad KEY=VALUE...)."""

    exit_code = 2


class SourceError(HalabError):
    """A source that cannot be had, or not safely; the message says what to do."""


class ChecksumMismatch(SourceError):
    """A download whose sha256 is not the pinned one (the file is already deleted)."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: sha256 mismatch, expected {expected}, got {actual}; the file was deleted")
        self.expected, self.actual = expected, actual


class BuildError(HalabError):
    """A build that failed; says where its full log is."""


class ProviderError(HalabError):
    """A lab operation that failed; the message says what and where to look."""


class ProbeError(HalabError):
    """The measuring agent could not run on a node, or said something that is not JSON."""


class ImageError(HalabError):
    """An image build that cannot go ahead; the message says why and what to do."""


class AmiError(HalabError):
    """A publish step that cannot go on; the message names the action, region and what was done."""
