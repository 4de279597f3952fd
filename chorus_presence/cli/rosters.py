"""`chorus-presence roster ...` and `group sync`: users' contact lists, for provisioning.

`roster link` and `group sync` make real subscriptions both ways, so connected clients see
the new contacts and their presence at once.
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from chorus_presence.cli.common import (
    console,
    count,
    json_option,
    print_json,
    report,
    user_argument,
    yes_no,
)
from chorus_presence.cli.connection import call
from chorus_presence.cli.tables import Table
from chorus_presence.config import Config


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "roster", help="show and change users' contact lists", description="Manage rosters."
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show", help="a user's contacts", description="Show a user's contacts and requests."
    )
    user_argument(show)
    json_option(show)
    show.set_defaults(handler=_show)

    add = actions.add_parser(
        "add",
        help="add or edit a contact",
        description="Add a contact to a user's roster, or set its name and groups (the"
        " groups given replace the item's groups). Subscriptions are left as they are;"
        " use `roster link` for those.",
    )
    user_argument(add)
    user_argument(add, "contact")
    add.add_argument("--name", help="the name the user sees for the contact")
    add.add_argument(
        "--group",
        action="append",
        default=[],
        dest="groups",
        metavar="GROUP",
        help="a group to file the contact in (repeat for several)",
    )
    json_option(add)
    add.set_defaults(handler=_add)

    remove = actions.add_parser(
        "remove",
        help="remove a contact",
        description="Remove a contact from a user's roster, cancelling the subscriptions"
        " both ways.",
    )
    user_argument(remove)
    user_argument(remove, "contact")
    json_option(remove)
    remove.set_defaults(handler=_remove)

    link = actions.add_parser(
        "link",
        help="make two users see each other",
        description="Subscribe two users of this server to each other's presence, through"
        " the same exchanges their clients would make. A user who has the other on their"
        " presence blocked list or their XEP-0191 block list keeps them there: the command"
        " then fails.",
    )
    user_argument(link)
    user_argument(link, "contact")
    json_option(link)
    link.set_defaults(handler=_link)

    group = commands.add_parser(
        "group", help="company groups of users", description="Manage groups of users."
    )
    group_actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    sync = group_actions.add_parser(
        "sync",
        help="make every member see every other member",
        description="Link every member with every other member and file them under GROUP in"
        " each other's rosters. It only adds: nobody is unlinked or removed from a group.",
    )
    sync.add_argument("group", metavar="GROUP", help="the group's name")
    sync.add_argument("users", metavar="USER", nargs="+", help="the members")
    json_option(sync)
    sync.set_defaults(handler=_sync)


def _show(args: argparse.Namespace, config: Config) -> int:
    roster = call(config, "roster.show", user=args.user)
    if args.json:
        print_json(roster)
        return 0
    table = Table(
        "Contact",
        "Name",
        "Subscription",
        "Asked",
        "Pre-approved",
        "Groups",
        title=f"Roster of {roster['user']}",
        caption=f"{count(len(roster['items']), 'contact')},"
        f" {count(len(roster['pending']), 'pending request')}",
    )
    for item in roster["items"]:
        table.add_row(
            item["jid"],
            item["name"] or "",
            item["subscription"],
            yes_no(item["ask"]),
            yes_no(item["approved"]),
            ", ".join(item["groups"]),
        )
    table.print()
    for request in roster["pending"]:
        nick = f" ({escape(request['nick'])})" if request["nick"] else ""
        status = f": {escape(request['status'])}" if request["status"] else ""
        console.print(
            f"Pending request from {escape(request['jid'])}{nick}{status}", soft_wrap=True
        )
    return 0


def _add(args: argparse.Namespace, config: Config) -> int:
    result = call(
        config,
        "roster.add",
        user=args.user,
        contact=args.contact,
        name=args.name,
        groups=args.groups,
    )
    return report(
        args,
        result,
        f"{escape(result['item']['jid'])} is in the roster of {escape(result['user'])}",
    )


def _remove(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "roster.remove", user=args.user, contact=args.contact)
    return report(
        args,
        result,
        f"Removed {escape(result['contact'])} from the roster of {escape(result['user'])}",
    )


def _link(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "roster.link", user=args.user, contact=args.contact)
    return report(
        args, result, f"{escape(result['user'])} and {escape(result['contact'])} see each other"
    )


def _sync(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "group.sync", group=args.group, users=args.users)
    return report(
        args,
        result,
        f"Group {escape(result['group'])}: {len(result['members'])} members,"
        f" {result['linked']} pairs newly linked, {result['tagged']} roster items filed",
    )
