"""Progress lines that carry the time since a long job started.

Compiles, boots and failover phases take from seconds to minutes on a shared host; a line
that says how long the job has run so far tells a waiting user it is moving, and where the
time went afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Progress = Callable[[str], None]


def timed(progress: Progress = print) -> Progress:
    """progress, each message prefixed with the seconds since this call: `[  12.3 s] ...`."""
    started = time.monotonic()

    def say(message: str) -> None:
        progress(f"[{time.monotonic() - started:6.1f} s] {message}")

    return say
