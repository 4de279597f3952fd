"""The admin tables on a terminal: boxed when they fit, plain text when they do not, and no
cell ever cut."""

from __future__ import annotations

import io
import re

from rich.console import Console

from chorus_presence.cli.tables import Table

LONG_JID = "alexandra.konstantinopoulou-papadimitriou@chorus.test/workstation-by-the-window"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def printed(table: Table, width: int) -> str:
    terminal = Terminal()
    table.print(Console(file=terminal, width=width, color_system=None, highlight=False))
    return terminal.getvalue()


def sessions(*jids: str) -> Table:
    table = Table("JID", "Peer", "State", caption=f"{len(jids)} sessions")
    for jid in jids:
        table.add_row(jid, "127.0.0.1:50000", "available")
    return table


def test_a_table_that_fits_is_boxed() -> None:
    out = printed(sessions("bob@chorus.test/phone"), 80)
    assert "┃ JID" in out and "│ bob@chorus.test/phone │" in out
    assert "1 sessions" in out


def test_a_table_too_wide_for_the_terminal_is_plain_and_whole() -> None:
    out = printed(sessions(LONG_JID, "bob@chorus.test/phone"), 80)
    assert not re.search("[\u2500-\u257f\u2026]", out), out
    assert [re.split(" {2,}", line) for line in out.splitlines()] == [
        ["JID", "Peer", "State"],
        [LONG_JID, "127.0.0.1:50000", "available"],
        ["bob@chorus.test/phone", "127.0.0.1:50000", "available"],
    ]


def test_markup_and_line_breaks_in_cells_print_as_text_on_one_line() -> None:
    table = Table("User", "Status", title="Roster of [bold]x@chorus.test")
    table.add_row("[red]x@chorus.test", "Lunch\nback at 2")
    out = printed(table, 80)
    assert "Roster of [bold]x@chorus.test" in out
    assert "│ [red]x@chorus.test │ Lunch back at 2 │" in out


def test_grouped_columns_repeat_only_in_plain_text() -> None:
    table = Table("User", "Resource", grouped=1)
    table.add_row("alice@chorus.test", "desk")
    table.add_row("alice@chorus.test", "phone")
    boxed = printed(table, 80)
    assert boxed.count("alice@chorus.test") == 1
    assert table.plain_lines() == [
        "User               Resource",
        "alice@chorus.test  desk",
        "alice@chorus.test  phone",
    ]


def test_empty_cells_read_as_a_dash_in_plain_text() -> None:
    table = Table("Contact", "Name", "Groups")
    table.add_row("bob@chorus.test", "", "Staff")
    assert table.plain_lines()[1] == "bob@chorus.test  -     Staff"
