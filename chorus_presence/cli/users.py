"""`chorus-presence user ...`: adding, listing and removing accounts, and setting passwords.

The commands work on the database directly; SQLite's WAL journal lets them run while the
server is up. A user is named by localpart (`alice`) or by bare JID on the configured domain
(`alice@example.org`). Passwords come from a hidden prompt or from one line of stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.markup import escape
from rich.table import Table

from chorus_presence.cli.common import USAGE, CliError, command_hint, console
from chorus_presence.config import Config
from chorus_presence.services.accounts import (
    AccountExists,
    AccountService,
    InvalidPassword,
)
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database
from chorus_presence.xmpp.jid import JID, JIDError

T = TypeVar("T")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "user", help="manage user accounts", description="Manage accounts."
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="create an account", description="Create an account.")
    _user_argument(add)
    _password_argument(add)
    add.set_defaults(handler=_add)

    passwd = actions.add_parser(
        "passwd", help="set a new password", description="Set an account's password."
    )
    _user_argument(passwd)
    _password_argument(passwd)
    passwd.set_defaults(handler=_passwd)

    remove = actions.add_parser(
        "remove", help="delete an account", description="Delete an account and all its data."
    )
    _user_argument(remove)
    remove.set_defaults(handler=_remove)

    listing = actions.add_parser("list", help="list accounts", description="List all accounts.")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=_list)


def _user_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", metavar="USER", help="localpart (alice) or bare JID (alice@domain)")


def _password_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )


def _call(config: Config, operation: Callable[[AccountService], Awaitable[T]]) -> T:
    """Run one operation on the accounts, with the database open only around it."""
    # Each operation gets its own event loop so that password prompts happen outside any:
    # asyncio.run turns Ctrl-C into task cancellation, which a blocking prompt never sees.
    return asyncio.run(_with_accounts(config, operation))


async def _with_accounts(config: Config, operation: Callable[[AccountService], Awaitable[T]]) -> T:
    db = await Database.open(config.storage.database)
    try:
        return await operation(
            AccountService(AccountRepository(db), iterations=config.auth.scram_iterations)
        )
    finally:
        await db.close()


def _add(args: argparse.Namespace, config: Config) -> int:
    localpart, jid = _account(args.user, config)
    # Checked before asking for a password, so the operator does not type it for nothing.
    if _call(config, lambda accounts: accounts.exists(localpart)):
        raise CliError(f"user {jid} already exists")
    password = _read_password(jid, from_stdin=args.password_stdin)
    try:
        _call(config, lambda accounts: accounts.create(localpart, password))
    except AccountExists:
        raise CliError(f"user {jid} already exists") from None
    except InvalidPassword as error:
        raise CliError(f"bad password: {error}") from None
    console.print(f"Added {escape(jid)}", soft_wrap=True)
    return 0


def _passwd(args: argparse.Namespace, config: Config) -> int:
    localpart, jid = _account(args.user, config)
    if not _call(config, lambda accounts: accounts.exists(localpart)):
        raise CliError(f"no such user: {jid}")
    password = _read_password(jid, from_stdin=args.password_stdin)
    try:
        changed = _call(config, lambda accounts: accounts.change_password(localpart, password))
    except InvalidPassword as error:
        raise CliError(f"bad password: {error}") from None
    if not changed:
        raise CliError(f"no such user: {jid}")
    console.print(f"Changed the password of {escape(jid)}", soft_wrap=True)
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    localpart, jid = _account(args.user, config)
    if not _call(config, lambda accounts: accounts.delete(localpart)):
        raise CliError(f"no such user: {jid}")
    console.print(f"Removed {escape(jid)}", soft_wrap=True)
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    names = _call(config, lambda accounts: accounts.list())
    users = [(name, f"{name}@{config.domain}") for name in names]
    if args.json:
        # Plain print: machine-readable output must not be restyled or wrapped.
        print(json.dumps([{"username": name, "jid": jid} for name, jid in users]))
        return 0
    if not users:
        hint = escape(command_hint(args.config))
        console.print(f"No users yet. Add one with:\n  {hint} user add alice", soft_wrap=True)
        return 0
    table = Table("Username", "JID", caption=f"{len(users)} user{'s' * (len(users) != 1)}")
    for name, jid in users:
        table.add_row(escape(name), escape(jid))
    console.print(table)
    return 0


def _account(text: str, config: Config) -> tuple[str, str]:
    """The localpart and bare JID that USER names; a localpart alone means this domain."""
    # '@' and '/' cannot occur in a localpart, so without them the text is one.
    is_localpart = "@" not in text and "/" not in text
    try:
        jid = JID(text, config.domain) if is_localpart else JID.parse(text)
    except JIDError as error:
        raise CliError(f"bad username: {error}") from None
    if jid.local is None or not jid.is_bare:
        raise CliError(f"bad username: {text!r} is not a localpart or a bare JID")
    if jid.domain != config.domain:
        raise CliError(f"bad username: {jid} is not on this server's domain {config.domain}")
    return jid.local, str(jid)


def _read_password(jid: str, *, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("no password on standard input")
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the password on; use --password-stdin", USAGE)
    password = getpass.getpass(f"Password for {jid}: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise CliError("the passwords do not match")
    return password
