"""The tables the admin commands print: a boxed table on a terminal wide enough for it, plain
aligned text everywhere else.

No cell is ever cut or wrapped: a JID shown here is copied into the next command (`session
kick`, `roster remove`), so it must come out whole. A table wider than the terminal, and any
table written to a pipe or a file, is printed as plain text instead: a header line, then one
line per row, the columns left-aligned and separated by at least two spaces, no box drawing
and no colour, so that `grep`, `cut` and `awk` work on it. A cell that is empty there reads
`-`, so that every line has every column.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from chorus_presence.cli.common import console as default_console

GAP = "  "
UNBOUNDED = 1 << 20
EMPTY = "-"
# A status text may hold a line break or a tab; a row stays on one line, its columns aligned.
ONE_LINE = str.maketrans(dict.fromkeys("\n\r\t\v\f", " "))


class Table:
    """Rows of plain text (never markup) under a header, with an optional title and caption.

    `grouped` leading columns of a row that repeat the row above are left blank in the boxed
    table, for readability; plain text repeats them, so that each line stands on its own.
    """

    def __init__(
        self,
        *headers: str,
        title: str | None = None,
        caption: str | None = None,
        grouped: int = 0,
    ) -> None:
        self.headers = headers
        self.title = title
        self.caption = caption
        self.grouped = grouped
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"A row of {len(cells)} cells in a table of {len(self.headers)}")
        self.rows.append(tuple(cell.translate(ONE_LINE) for cell in cells))

    def print(self, console: Console = default_console) -> None:
        boxed = self._boxed()
        if _is_terminal(console) and _natural_width(console, boxed) <= console.width:
            # Above the table rather than in it: rich would wrap a title wider than the table.
            if self.title:
                console.print(Text(self.title, style="bold"), soft_wrap=True)
            console.print(boxed)
        else:
            for line in self.plain_lines():
                console.file.write(line + "\n")
            console.file.flush()

    def plain_lines(self) -> list[str]:
        """The plain-text form: title, header and rows, each on one line; no caption, which
        only counts the rows."""
        rows = [self.headers, *([cell or EMPTY for cell in row] for row in self.rows)]
        widths = [max(cell_len(row[column]) for row in rows) for column in range(len(self.headers))]
        lines = [self.title] if self.title else []
        for row in rows:
            padded = (
                cell + " " * (width - cell_len(cell))
                for cell, width in zip(row, widths, strict=True)
            )
            lines.append(GAP.join(padded).rstrip())
        return lines

    def _boxed(self) -> RichTable:
        table = RichTable(*self.headers, caption=self.caption, box=box.HEAVY_HEAD)
        previous: Sequence[str] = ()
        for row in self.rows:
            shown = list(row)
            for column in range(min(self.grouped, len(previous))):
                if row[: column + 1] != tuple(previous[: column + 1]):
                    break
                shown[column] = ""
            # Text, not markup: a JID or a status may hold '[' and ']'.
            table.add_row(*(Text(cell) for cell in shown))
            previous = row
        return table


def _natural_width(console: Console, table: RichTable) -> int:
    # Measured as if the terminal had no edge: rich clamps a measurement to the width it has.
    unbounded = console.options.update_width(UNBOUNDED)
    return console.measure(table, options=unbounded).maximum


def _is_terminal(console: Console) -> bool:
    # The file itself, not rich's is_terminal: FORCE_COLOR asks for colour, not for a layout
    # that a pipe cannot read.
    isatty = getattr(console.file, "isatty", None)
    return bool(isatty is not None and isatty())
