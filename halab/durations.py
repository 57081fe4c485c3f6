"""How long each stage of long work took last time on this host, and progress that says so.

A Packer bake, a `vagrant up` or a whole pipeline stage runs for minutes with nothing to show;
the time it took last time on this very host is the best estimate there is of how long it
will take now. Each stage that finishes records its time under the state directory
(paths.durations()); the next run shows the stage, its elapsed time and that estimate: on a
terminal as a line that ticks below the output, elsewhere (CI logs) as plain lines when the
stage starts and ends.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from halab import paths

Progress = Callable[[str], None]


def clock(seconds: float) -> str:
    """Seconds as a stopwatch shows them: 0:07, 3:10, 1:02:05."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, seconds_left = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds_left:02d}" if hours else f"{minutes}:{seconds_left:02d}"


def estimate(elapsed: float, last: float | None) -> str:
    """Where a stage stands against its last run here: the time left, how far over, or that
    there is nothing to go by."""
    if last is None:
        return f"{clock(elapsed)} so far (no earlier run on this host to estimate from)"
    if elapsed <= last:
        return f"{clock(elapsed)} so far, about {clock(last - elapsed)} left (the last run took {clock(last)})"
    return f"{clock(elapsed)} so far, {clock(elapsed - last)} over the last run's {clock(last)}"


def recorded() -> dict[str, float]:
    """Every stage's last time on this host ({} before the first, or if the file is not ours)."""
    try:
        data = json.loads(paths.durations().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: float(value) for key, value in data.items() if isinstance(value, int | float) and value >= 0}


def remember(key: str, seconds: float) -> None:
    """Record a stage's time, replacing the file whole (a reader never sees half of it)."""
    data = {**recorded(), key: round(seconds, 1)}
    target = paths.durations()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    partial.replace(target)


class Stage:
    """One stage under way, as a context manager: it says the stage and its estimate as it
    starts, ticks on a terminal, and `finished` records its time and says it."""

    def __init__(self, key: str, label: str, progress: Progress = print, terminal: bool | None = None) -> None:
        self.key = key  # what the time is recorded under: the stage and what changes its length
        self.label = label
        self.progress = progress
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.last = recorded().get(key)
        self.started = 0.0
        self._live: Live | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        """The ticking line: the stage, its elapsed time, the estimate."""
        return f"{self.label}: {estimate(self.elapsed, self.last)}"

    def __enter__(self) -> Stage:
        self.started = time.monotonic()
        known = f"the last run took {clock(self.last)}" if self.last is not None else "no earlier run on this host"
        self.progress(f"{self.label} ({known})")
        if self.terminal:
            console = Console(stderr=True)
            self._live = Live(get_renderable=lambda: Text(self.line(), style="dim"), console=console, transient=True)
            self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def finished(self, result: str, ok: bool, note: str = "") -> float:
        """The stage ended with result: say so, and return its time, recorded when ok (a failed
        or skipped stage says nothing of how long the work takes)."""
        seconds = self.elapsed
        if ok:
            remember(self.key, seconds)
        was = f" (last run {clock(self.last)})" if self.last is not None else ""
        self.progress(f"{self.label} {result} in {clock(seconds)}{was}{' ' + note if note else ''}")
        return seconds
