"""`chorus-presence priority ...`: a user's priority list, the people who still reach the user
in Do Not Disturb, Busy or In Meeting (their messages alert, their calls ring the usual
device). The same service as the users' own clients and ad-hoc command."""

from __future__ import annotations

import argparse

from rich.markup import escape

from chorus_presence.cli.common import console, json_option, print_json, user_argument
from chorus_presence.cli.connection import call
from chorus_presence.config import Config


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "priority",
        help="who reaches a user in Do Not Disturb",
        description="A user's priority list: while the user is in Do Not Disturb, Busy or In"
        " Meeting, messages from the people on it alert the user and their calls ring the device"
        " of Available; everyone else's messages arrive marked silent.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    show = actions.add_parser("show", help="the list", description="Show the priority list.")
    user_argument(show)
    json_option(show)
    show.set_defaults(handler=_run, command="priority.show")

    for name, summary in (
        ("add", "put a user of this server on the list"),
        ("remove", "take a contact off the list"),
    ):
        action = actions.add_parser(name, help=summary, description=summary.capitalize() + ".")
        user_argument(action)
        user_argument(action, "contact")
        json_option(action)
        action.set_defaults(handler=_run, command=f"priority.{name}")


def _run(args: argparse.Namespace, config: Config) -> int:
    arguments = {"user": args.user}
    if "contact" in args:
        arguments["contact"] = args.contact
    result = call(config, args.command, **arguments)
    if args.json:
        print_json(result)
        return 0
    contacts = result["contacts"]
    console.print(f"{escape(result['user'])}: priority list ({len(contacts)})", soft_wrap=True)
    for contact in contacts:
        console.print(f"  {escape(contact)}", soft_wrap=True)
    return 0
