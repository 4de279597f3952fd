"""The `chorus-presence` command: argument parsing, dispatch, and turning errors into exit codes.

Each command module registers its own subcommands; this module loads the configuration they
all need and makes sure every failure ends as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from chorus_presence import __version__
from chorus_presence.cli import (
    init,
    presence,
    priority,
    quiet_hours,
    rosters,
    routing,
    sign_ins,
    users,
    visibility,
)
from chorus_presence.cli.common import FAILURE, USAGE, CliError
from chorus_presence.config import LOG_LEVELS, Config, ConfigError, load_config, resolve_config_path
from chorus_presence.storage.database import SchemaError
from chorus_presence.storage.errors import StorageUnavailable

PROGRAM = "chorus-presence"
# Each parser keeps its own --config under this prefix and its prog, so that main() sees every
# one given, before the command and after it.
CONFIG_DEST = "config given to "


class Parser(argparse.ArgumentParser):
    """Every command of the tree takes --config, and usage errors are one line on stderr like
    every other error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--config",
            metavar="PATH",
            dest=CONFIG_DEST + self.prog,
            default=argparse.SUPPRESS,
            help="configuration file (default: $CHORUS_CONFIG, else config/chorus.toml)",
        )

    def error(self, message: str) -> NoReturn:
        self.exit(
            USAGE, f"{PROGRAM}: {message[:1].upper()}{message[1:]}; see '{self.prog} --help'\n"
        )


def build_parser() -> argparse.ArgumentParser:
    # Typed as the base class, which every command module extends.
    parser: argparse.ArgumentParser = Parser(
        prog=PROGRAM,
        description="A presence server that speaks XMPP.",
    )
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the server in the foreground",
        description="Run the server until SIGTERM or SIGINT (Ctrl-C).",
    )
    serve.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="override the configured logging.level",
    )
    serve.set_defaults(handler=_serve)

    init.add_parser(commands)
    users.add_parser(commands)
    rosters.add_parser(commands)
    presence.add_parsers(commands)
    visibility.add_parser(commands)
    routing.add_parser(commands)
    priority.add_parser(commands)
    quiet_hours.add_parser(commands)
    sign_ins.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits by itself for --help, --version and usage errors (code 2).
        return exit_.code if isinstance(exit_.code, int) else USAGE
    try:
        args.config = _config_option(args)
        config = load_config(resolve_config_path(args.config))
        return args.handler(args, config)
    except ConfigError as error:
        return _fail(str(error), USAGE)
    except CliError as error:
        return _fail(str(error), error.exit_code)
    except OSError as error:
        return _fail(_os_error(error), FAILURE)
    except (SchemaError, StorageUnavailable, sqlite3.Error) as error:
        return _fail(str(error), FAILURE)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _serve(args: argparse.Namespace, config: Config) -> int:
    # Imported here so the admin commands do not load the whole server.
    from chorus_presence.composition import run_server

    return run_server(config, log_level=args.log_level)


def _config_option(args: argparse.Namespace) -> str | None:
    """The one configuration file given, wherever on the command line."""
    chosen: str | None = None
    for name, value in vars(args).items():
        if not name.startswith(CONFIG_DEST):
            continue
        if chosen is None:
            chosen = value
        elif Path(value).resolve() != Path(chosen).resolve():
            raise CliError(
                f"Two configuration files are given, {chosen!r} and {value!r}: give --config once",
                USAGE,
            )
    return chosen


def _os_error(error: OSError) -> str:
    # "[Errno 2] No such file or directory: 'x'" reads as "x: No such file or directory".
    if error.strerror is None:
        return str(error)
    if error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return error.strerror[:1].upper() + error.strerror[1:]


def _fail(message: str, exit_code: int) -> int:
    print(f"{PROGRAM}: {message}", file=sys.stderr)
    return exit_code
