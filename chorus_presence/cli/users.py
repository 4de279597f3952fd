"""`chorus-presence user ...`: adding, removing, disabling and listing accounts, setting
passwords and display names; bulk import and export are in `user_csv`.

A user is named by localpart (`alice`) or by bare JID on the configured domain
(`alice@example.org`). Passwords come from a hidden prompt or from one line of stdin, and are
read with no connection or database open, so Ctrl-C at the prompt leaves nothing half done.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from rich.markup import escape

from chorus_presence.cli import user_csv
from chorus_presence.cli.common import (
    USAGE,
    CliError,
    command_hint,
    console,
    count,
    json_option,
    print_json,
    user_argument,
)
from chorus_presence.cli.connection import call
from chorus_presence.cli.tables import Table
from chorus_presence.config import Config


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "user", help="manage user accounts", description="Manage accounts."
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="create an account", description="Create an account.")
    add.add_argument(
        "--name",
        metavar="NAME",
        help="the display name lists show instead of the JID (1 to 64 characters)",
    )
    _password_command(add, _add)

    passwd = actions.add_parser(
        "passwd", help="set a new password", description="Set an account's password."
    )
    _password_command(passwd, _passwd)

    naming = actions.add_parser(
        "name",
        help="show, set or clear a display name",
        description="Show the display name lists show for an account instead of its JID, set"
        " it to NAME (1 to 64 characters, no control characters), or clear it.",
    )
    user_argument(naming)
    value = naming.add_mutually_exclusive_group()
    value.add_argument("name", metavar="NAME", nargs="?", help="the new display name")
    value.add_argument("--clear", action="store_true", help="remove the display name")
    json_option(naming)
    naming.set_defaults(handler=_name)

    for name, handler, summary, description in (
        (
            "remove",
            _remove,
            "delete an account",
            "Delete an account and all its data; its sessions end at once.",
        ),
        (
            "disable",
            _disable,
            "stop an account from logging in",
            "Keep an account and its data but refuse its logins; its sessions end at once. An"
            " account already disabled stays so, and the command succeeds.",
        ),
        (
            "enable",
            _enable,
            "let a disabled account log in again",
            "Re-enable an account; one already enabled stays so, and the command succeeds.",
        ),
    ):
        action = actions.add_parser(name, help=summary, description=description)
        user_argument(action)
        json_option(action)
        action.set_defaults(handler=handler)

    listing = actions.add_parser(
        "list",
        help="list accounts",
        description="List every account, disabled ones too, with its state.",
    )
    json_option(listing)
    listing.set_defaults(handler=_list)

    user_csv.add_parsers(actions)


def _password_command(parser: argparse.ArgumentParser, handler: object) -> None:
    user_argument(parser)
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )
    json_option(parser)
    parser.set_defaults(handler=handler)


def _add(args: argparse.Namespace, config: Config) -> int:
    account = call(config, "user.lookup", user=args.user)
    # Checked before asking for a password, so the operator does not type it for nothing.
    if account["exists"]:
        raise CliError(f"User {account['jid']} already exists")
    named = {}
    if args.name is not None:
        _check_name(args.name)
        named["name"] = args.name
    password = _read_password(account["jid"], from_stdin=args.password_stdin)
    result = call(config, "user.add", user=args.user, password=password, **named)
    return _report(args, result, "Added")


def _passwd(args: argparse.Namespace, config: Config) -> int:
    account = call(config, "user.lookup", user=args.user)
    if not account["exists"]:
        raise CliError(f"No such user {account['jid']}")
    password = _read_password(account["jid"], from_stdin=args.password_stdin)
    result = call(config, "user.passwd", user=args.user, password=password)
    return _report(args, result, "Changed the password of")


def _name(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "user.name", user=args.user, name=args.name, clear=args.clear)
    jid = escape(result["jid"])
    if args.json:
        print_json(result)
    elif args.clear:
        console.print(f"Cleared the display name of {jid}", soft_wrap=True)
    elif args.name is not None:
        console.print(f"{jid} is now shown as {escape(result['name'])}", soft_wrap=True)
    elif result["name"] is None:
        console.print(f"{jid} has no display name", soft_wrap=True)
    else:
        # The name alone, so that a script can read it as it is.
        console.print(escape(result["name"]), soft_wrap=True)
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    return _report(args, call(config, "user.remove", user=args.user), "Removed")


def _disable(args: argparse.Namespace, config: Config) -> int:
    return _switch(args, call(config, "user.disable", user=args.user), "Disabled", "disabled")


def _enable(args: argparse.Namespace, config: Config) -> int:
    return _switch(args, call(config, "user.enable", user=args.user), "Enabled", "enabled")


def _list(args: argparse.Namespace, config: Config) -> int:
    users = call(config, "user.list")
    if args.json:
        print_json(users)
        return 0
    if not users:
        hint = escape(command_hint(args.config))
        console.print(f"No users yet. Add one with:\n  {hint} user add alice", soft_wrap=True)
        return 0
    table = Table("Username", "JID", "State", "Name", caption=count(len(users), "user"))
    for user in users:
        state = "disabled" if user["disabled"] else "enabled"
        table.add_row(user["username"], user["jid"], state, user["name"] or "-")
    table.print()
    return 0


def _report(args: argparse.Namespace, result: dict[str, str], done: str) -> int:
    if args.json:
        print_json(result)
    else:
        console.print(f"{done} {escape(result['jid'])}", soft_wrap=True)
    return 0


def _switch(args: argparse.Namespace, result: dict, done: str, state: str) -> int:
    # Already in that state is a success (exit 0): a script that makes sure an account is
    # disabled, or runs twice, must not fail for it; the line tells a person nothing changed.
    if result["changed"] or args.json:
        return _report(args, result, done)
    console.print(f"{escape(result['jid'])} is already {state}", soft_wrap=True)
    return 0


def _check_name(name: str) -> None:
    """Refuses a name the server would refuse, before the password is asked for."""
    # Imported here: the rest of the command line does not load the services.
    from chorus_presence.services.display_names import InvalidName, checked_name

    try:
        checked_name(name)
    except InvalidName as error:
        raise CliError(str(error)) from None


def _read_password(jid: str, *, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("No password on standard input")
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise CliError("No terminal to ask for the password on: use --password-stdin", USAGE)
    password = getpass.getpass(f"Password for {jid}: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise CliError("The passwords do not match")
    return password
