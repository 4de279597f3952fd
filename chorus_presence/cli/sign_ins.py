"""`chorus-presence signin list|revoke`: the clients that stay logged in as a user with tokens
(XEP-0484), as the user sees them in the portal's settings, and revoking them. Live while the
server runs (a revoked client's streams end at once), on the database while it is stopped."""

from __future__ import annotations

import argparse

from rich.markup import escape

from chorus_presence.cli.common import console, count, json_option, print_json, user_argument
from chorus_presence.cli.connection import call
from chorus_presence.cli.tables import Table
from chorus_presence.config import Config


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "signin",
        help="browsers and apps that stay signed in",
        description="The sign-ins of a user: each browser or app that stays logged in with a"
        " token instead of the password, with when it signed in, was last used and is signed"
        " out unless used again.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list", help="a user's sign-ins", description="List a user's sign-ins, latest used first."
    )
    user_argument(listing)
    json_option(listing)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser(
        "revoke",
        help="sign a browser or app out",
        description="Revoke a sign-in (its ID from 'signin list') or, with --all, every one"
        " of the user's: their tokens log nobody in any more, and while the server runs the"
        " clients signed in with them are disconnected at once.",
    )
    user_argument(revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("sign_in", metavar="ID", nargs="?", help="the sign-in to revoke")
    which.add_argument("--all", action="store_true", help="revoke every sign-in of the user")
    json_option(revoke)
    revoke.set_defaults(handler=_revoke)


def _list(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "signin.list", user=args.user)
    if args.json:
        print_json(result)
        return 0
    sign_ins = result["sign_ins"]
    if not sign_ins:
        console.print(f"No sign-ins for {escape(result['jid'])}", soft_wrap=True)
        return 0
    table = Table(
        "ID",
        "Client",
        "Signed in",
        "Last used",
        "Expires",
        caption=count(len(sign_ins), "sign-in"),
    )
    for sign_in in sign_ins:
        table.add_row(
            sign_in["id"],
            sign_in["label"],
            _shown(sign_in["created"]),
            _shown(sign_in["last_used"]),
            _shown(sign_in["expires"]),
        )
    table.print()
    return 0


def _revoke(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "signin.revoke", user=args.user, sign_in=args.sign_in, every=args.all)
    if args.json:
        print_json(result)
        return 0
    if not result["revoked"]:
        console.print(f"No sign-ins for {escape(result['jid'])}", soft_wrap=True)
    for sign_in in result["revoked"]:
        console.print(
            f"Revoked the sign-in {escape(sign_in['id'])} of {escape(result['jid'])}:"
            f" {escape(sign_in['label'])}",
            soft_wrap=True,
        )
    return 0


def _shown(stamp: str) -> str:
    """2026-05-04T09:30:00Z as 2026-05-04 09:30 UTC."""
    return f"{stamp[:10]} {stamp[11:16]} UTC"
