"""`chorus-presence quiet-hours ...`: a user's quiet hours, the weekly schedule of states in the
user's time zone. The same service as the users' own clients, ad-hoc command and portal."""

from __future__ import annotations

import argparse

from rich.markup import escape

from chorus_presence.cli.common import console, json_option, print_json, user_argument
from chorus_presence.cli.connection import call
from chorus_presence.config import Config


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "quiet-hours",
        help="a user's weekly schedule of states",
        description="A user's quiet hours: weekly slots, in the user's time zone, during which"
        " the server gives the user a state and text (Do Not Disturb from 18:00 to 08:00 on"
        " weekdays, say), and Available with no text outside them.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show", help="the schedule", description="Show the slots and the user's time zone."
    )
    user_argument(show)
    json_option(show)
    show.set_defaults(handler=_run, command="quiet-hours.show")

    replace = actions.add_parser(
        "set",
        help="replace the schedule",
        description="Replace the schedule with the slots given, each one argument written"
        " 'DAYS HH:MM-HH:MM STATE [text]', e.g. 'mon-fri 18:00-08:00 dnd Off work'. Days are"
        " mon to sun, ranges (mon-fri), lists (sat,sun) or daily; an end at or before the start"
        " is the next day's, 24:00 the end of the day. Slots may overlap only where they say"
        " the same.",
    )
    user_argument(replace)
    replace.add_argument("slots", metavar="SLOT", nargs="+", help="one slot, quoted")
    json_option(replace)
    replace.set_defaults(handler=_run, command="quiet-hours.set")

    clear = actions.add_parser("clear", help="no quiet hours", description="Remove the schedule.")
    user_argument(clear)
    json_option(clear)
    clear.set_defaults(handler=_run, command="quiet-hours.clear")


def _run(args: argparse.Namespace, config: Config) -> int:
    arguments: dict[str, object] = {"user": args.user}
    if "slots" in args:
        arguments["slots"] = args.slots
    result = call(config, args.command, **arguments)
    if args.json:
        print_json(result)
        return 0
    slots = result["slots"]
    count = "1 slot" if len(slots) == 1 else f"{len(slots)} slots"
    heading = f"{escape(result['user'])}: quiet hours ({count}), in {escape(result['time_zone'])}"
    console.print(heading, soft_wrap=True)
    for slot in slots:
        console.print(f"  {escape(slot)}", soft_wrap=True)
    return 0
