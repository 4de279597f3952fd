"""The `chorus-presence` command: argument parsing, dispatch, and turning errors into exit codes.

Each command module registers its own subcommands; this module loads the configuration they
all need and makes sure every failure ends as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence

from chorus_presence import __version__
from chorus_presence.cli import init, presence, rosters, routing, users, visibility
from chorus_presence.cli.common import FAILURE, USAGE, CliError
from chorus_presence.config import LOG_LEVELS, Config, ConfigError, load_config, resolve_config_path
from chorus_presence.storage.database import SchemaError
from chorus_presence.storage.errors import StorageUnavailable

PROGRAM = "chorus-presence"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="A presence server that speaks XMPP.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $CHORUS_CONFIG, else config/chorus.toml)",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits by itself for --help, --version and usage errors (code 2).
        return exit_.code if isinstance(exit_.code, int) else USAGE
    try:
        config = load_config(resolve_config_path(args.config))
        return args.handler(args, config)
    except ConfigError as error:
        return _fail(str(error), USAGE)
    except CliError as error:
        return _fail(str(error), error.exit_code)
    except (SchemaError, StorageUnavailable, OSError, sqlite3.Error) as error:
        return _fail(str(error), FAILURE)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _serve(args: argparse.Namespace, config: Config) -> int:
    # Imported here so the admin commands do not load the whole server.
    from chorus_presence.composition import run_server

    return run_server(config, log_level=args.log_level)


def _fail(message: str, exit_code: int) -> int:
    print(f"{PROGRAM}: {message}", file=sys.stderr)
    return exit_code
