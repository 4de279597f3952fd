"""`chorus-presence user import FILE.csv` and `user export`: accounts in bulk, as CSV.

Import reads rows `username,password[,name]`, after an optional header row with those names,
and creates each account through the admin commands, with its display name when the name
column is not empty; every bad row (a name that cannot be stored among them) is reported with
its line number and reason, and the others are imported. Export writes
`username,disabled,name`: never a password or key.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.progress import Progress

from chorus_presence.cli.common import (
    CliError,
    console,
    count,
    err_console,
    json_option,
    print_json,
)
from chorus_presence.cli.connection import Refused, call, connect
from chorus_presence.config import Config

HEADERS = (["username", "password"], ["username", "password", "name"])


@dataclass(frozen=True)
class Row:
    line: int
    username: str
    password: str
    # None when the row has no name column, or an empty one.
    name: str | None


@dataclass(frozen=True)
class Failure:
    line: int
    error: str


def add_parsers(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    importer = actions.add_parser(
        "import",
        help="create accounts from a CSV file",
        description="Create an account for each row of a CSV file: username,password[,name],"
        " optionally after a header row naming those columns. Bad rows are reported with"
        " their line number and skipped; the exit code is 1 if any row was not imported.",
    )
    importer.add_argument("file", metavar="FILE.csv", type=Path, help="the CSV file to read")
    json_option(importer)
    importer.set_defaults(handler=_import)

    exporter = actions.add_parser(
        "export",
        help="write every account as CSV",
        description="Write username,disabled,name for every account to standard output; an"
        " account without a display name has an empty name.",
    )
    json_option(exporter)
    exporter.set_defaults(handler=_export)


def _import(args: argparse.Namespace, config: Config) -> int:
    rows, failures = read_rows(args.file)
    imported = 0
    with connect(config) as admin, Progress(console=err_console) as progress:
        task = progress.add_task("Importing users", total=len(rows))
        for row in rows:
            try:
                named = {} if row.name is None else {"name": row.name}
                admin.call("user.add", user=row.username, password=row.password, **named)
            except Refused as error:
                failures.append(Failure(row.line, str(error)))
            else:
                imported += 1
            progress.advance(task)
    failures.sort(key=lambda failure: failure.line)
    if args.json:
        print_json(
            {
                "imported": imported,
                "failed": [{"line": f.line, "error": f.error} for f in failures],
            }
        )
    else:
        for failure in failures:
            err_console.print(f"Line {failure.line}: {escape(failure.error)}", soft_wrap=True)
        console.print(f"Imported {count(imported, 'user')}", soft_wrap=True)
    if failures:
        lines = ", ".join(str(failure.line) for failure in failures)
        raise CliError(f"{count(len(failures), 'row')} not imported: line {lines}")
    return 0


def read_rows(path: Path) -> tuple[list[Row], list[Failure]]:
    """The rows to import, and those that are malformed, by line number."""
    rows: list[Row] = []
    failures: list[Failure] = []
    try:
        # utf-8-sig: spreadsheets often start their CSV files with a byte order mark.
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            for number, fields in enumerate(reader):
                line = reader.line_num
                if not fields or (number == 0 and [f.strip().lower() for f in fields] in HEADERS):
                    continue
                if len(fields) not in (2, 3):
                    columns = count(len(fields), "column")
                    failures.append(Failure(line, f"{columns}, not username,password[,name]"))
                elif not fields[0].strip():
                    failures.append(Failure(line, "Empty username"))
                else:
                    name = fields[2] if len(fields) == 3 and fields[2].strip() else None
                    rows.append(Row(line, fields[0].strip(), fields[1], name))
    except OSError as error:
        raise CliError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text") from None
    except csv.Error as error:
        raise CliError(f"{path} is not valid CSV: {error}") from None
    return rows, failures


def _export(args: argparse.Namespace, config: Config) -> int:
    accounts = call(config, "user.export")
    if args.json:
        print_json(accounts)
        return 0
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["username", "disabled", "name"])
    for account in accounts:
        disabled = "true" if account["disabled"] else "false"
        writer.writerow([account["username"], disabled, account["name"] or ""])
    return 0
