"""What every admin command shares: its error type, exit codes, output consoles, and the
arguments and output every group uses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

# Exit codes: FAILURE when the request itself cannot be done (no such user, bad password),
# USAGE when the command line or the configuration is wrong.
FAILURE = 1
USAGE = 2

# No emoji codes: a fingerprint such as "...:AB:..." would otherwise print a symbol.
console = Console(highlight=False, emoji=False)
# Progress and per-item problems, kept off stdout so that scripts can read the results there.
err_console = Console(stderr=True, highlight=False, emoji=False)


class CliError(Exception):
    """A problem to report on one line of stderr, ending the command with `exit_code`."""

    def __init__(self, message: str, exit_code: int = FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def command_hint(config_option: str | None) -> str:
    """How to run this command line again, as the operator would type it from here."""
    # Inside a virtual environment that is not activated, a bare `chorus-presence` is not on
    # PATH, so point at the script next to this interpreter.
    script = Path(sys.executable).parent / "chorus-presence"
    if script.exists():
        try:
            program = str(script.relative_to(Path.cwd()))
        except ValueError:
            program = str(script)
    else:
        program = "chorus-presence"
    return f"{program} --config {config_option}" if config_option else program


def user_argument(parser: argparse.ArgumentParser, name: str = "user") -> None:
    parser.add_argument(
        name, metavar=name.upper(), help="localpart (alice) or bare JID (alice@domain)"
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")


def print_json(value: Any) -> None:
    # Plain print: machine-readable output must not be restyled or wrapped.
    print(json.dumps(value))


def report(args: argparse.Namespace, result: Any, message: str) -> int:
    """A command's outcome: its JSON with --json, else one line for a person."""
    if getattr(args, "json", False):
        print_json(result)
    else:
        console.print(message, soft_wrap=True)
    return 0


def count(number: int, noun: str) -> str:
    """'1 user', '2 users'."""
    return f"{number} {noun}{'s' * (number != 1)}"


def yes_no(value: object) -> str:
    return "yes" if value else "no"
