"""The mapping table as printed: one row per thing found, what the lab does, what it cannot bring."""

from __future__ import annotations

from collections.abc import Sequence

from halab.imports.mapping import Row

HEADER = Row("found", "the lab", "cannot bring (consequence)")
# The widest the first two columns grow; a longer cell pushes its own row only.
WIDEST = 56


def text(rows: Sequence[Row]) -> str:
    """The rows as aligned text; an imported file's words are shown as printable text only."""
    cells = [tuple(_printable(cell) for cell in (row.found, row.lab, row.missing)) for row in (HEADER, *rows)]
    widths = [min(WIDEST, max(len(line[column]) for line in cells)) for column in (0, 1)]
    lines = [f"{found:<{widths[0]}} | {lab:<{widths[1]}} | {missing}".rstrip(" |") for found, lab, missing in cells]
    return "\n".join(lines)


def _printable(cell: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in cell)
