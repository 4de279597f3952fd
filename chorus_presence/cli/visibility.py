"""`chorus-presence visibility ...`: who may see a user's presence, as the user sets it.

The same service as the users' own clients and ad-hoc commands, so each change reaches the
contacts concerned at once (a blocked contact receives unsubscribed and unavailable).
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from chorus_presence.cli.common import console, json_option, print_json, user_argument, yes_no
from chorus_presence.cli.connection import call
from chorus_presence.config import Config

POLICIES = ("ask", "everyone", "nobody")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "visibility",
        help="who may see a user's presence",
        description="A user's visibility policy, the allowed list, the presence blocked list"
        " (contacts who cannot see the user's presence), pending requests and presence"
        " automation. The presence blocked list is not the XEP-0191 block list, which stops"
        " every stanza both ways and which users keep from their own clients.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show",
        help="settings and lists",
        description="Show the policy, presence automation and the three lists: pending,"
        " allowed and presence blocked, and whether the user appears offline.",
    )
    user_argument(show)
    json_option(show)
    show.set_defaults(handler=_run, command="visibility.show")

    pending = actions.add_parser(
        "pending", help="unanswered requests", description="List unanswered requests."
    )
    user_argument(pending)
    json_option(pending)
    pending.set_defaults(handler=_pending)

    policy = actions.add_parser(
        "policy",
        help="how requests are answered",
        description="ask: requests wait for the user; everyone: approved unless on the"
        " presence blocked list; nobody: refused unless allowed in advance (a refused requester"
        " joins the presence blocked list). Applies at once to pending requests.",
    )
    user_argument(policy)
    policy.add_argument("policy", choices=POLICIES)
    json_option(policy)
    policy.set_defaults(handler=_run, command="visibility.policy")

    for name, summary, description in (
        (
            "allow",
            "let a contact see the user",
            "Move a contact to the allowed list, off the presence blocked list: approved, or"
            " pre-approved if they have not asked. The contact is a user of this server.",
        ),
        (
            "block",
            "put a contact on the presence blocked list",
            "Move a contact to the presence blocked list, so they cannot see the user's"
            " presence: a pending request is refused, a subscription cancelled (the contact sees"
            " the user go unavailable), later requests refused. Messages still pass: this is not"
            " the XEP-0191 block list. The contact is a user of this server.",
        ),
        ("accept", "approve a pending request", "Approve a contact's pending request."),
    ):
        action = actions.add_parser(name, help=summary, description=description)
        user_argument(action)
        user_argument(action, "contact")
        json_option(action)
        action.set_defaults(handler=_run, command=f"visibility.{name}")

    automation = actions.add_parser(
        "automation",
        help='"Away" while not logged in',
        description="on: while the user has no resource online, contacts see Away, 'Not"
        " logged in' instead of offline.",
    )
    user_argument(automation)
    automation.add_argument("state", choices=("on", "off"))
    json_option(automation)
    automation.set_defaults(handler=_automation)

    appear_offline = actions.add_parser(
        "appear-offline",
        help="everyone else sees the user as logged out",
        description="on: contacts, call routing and every other user see the user as not"
        " logged in (with 'Away' while not logged in, if that is on), while the user goes on"
        " using the service; it stays on across logins and restarts until turned off.",
    )
    user_argument(appear_offline)
    appear_offline.add_argument("state", choices=("on", "off"))
    json_option(appear_offline)
    appear_offline.set_defaults(handler=_appear_offline)

    last_seen = actions.add_parser(
        "last-seen",
        help="show or hide when the user was last seen",
        description="off: nobody learns since when the user has been away or offline (no"
        " XEP-0319 idle time on the user's presence, XEP-0012 last activity refused as to a"
        " stranger), and the user learns nobody's.",
    )
    user_argument(last_seen)
    last_seen.add_argument("state", choices=("on", "off"))
    json_option(last_seen)
    last_seen.set_defaults(handler=_last_seen)


def _run(args: argparse.Namespace, config: Config) -> int:
    arguments = {"user": args.user}
    for name in ("contact", "policy"):
        if name in args:
            arguments[name] = getattr(args, name)
    _print(args, call(config, args.command, **arguments))
    return 0


def _automation(args: argparse.Namespace, config: Config) -> int:
    overview = call(config, "visibility.automation", user=args.user, enabled=args.state == "on")
    _print(args, overview)
    return 0


def _appear_offline(args: argparse.Namespace, config: Config) -> int:
    overview = call(config, "visibility.appear-offline", user=args.user, enabled=args.state == "on")
    _print(args, overview)
    return 0


def _last_seen(args: argparse.Namespace, config: Config) -> int:
    overview = call(config, "visibility.last-seen", user=args.user, shown=args.state == "on")
    _print(args, overview)
    return 0


def _pending(args: argparse.Namespace, config: Config) -> int:
    requests = call(config, "visibility.pending", user=args.user)
    if args.json:
        print_json(requests)
        return 0
    console.print(f"{len(requests)} pending", soft_wrap=True)
    _requests(requests)
    return 0


def _print(args: argparse.Namespace, overview: dict) -> None:
    if args.json:
        print_json(overview)
        return
    console.print(
        f"{escape(overview['user'])}: policy {overview['policy']}, 'Away' while not logged in:"
        f" {yes_no(overview['away_when_offline'])}, appears offline:"
        f" {yes_no(overview['appear_offline'])}, last seen shown:"
        f" {yes_no(overview['last_seen_shown'])}",
        soft_wrap=True,
    )
    console.print(f"Pending ({len(overview['pending'])})", soft_wrap=True)
    _requests(overview["pending"])
    for name, title in (("allowed", "Allowed"), ("blocked", "Presence blocked")):
        contacts = overview[name]
        console.print(f"{title} ({len(contacts)})", soft_wrap=True)
        for contact in contacts:
            console.print(f"  {escape(contact)}", soft_wrap=True)


def _requests(requests: list[dict]) -> None:
    for request in requests:
        nick = f" ({escape(request['nick'])})" if request["nick"] else ""
        status = f": {escape(request['status'])}" if request["status"] else ""
        console.print(f"  {escape(request['jid'])}{nick}{status}", soft_wrap=True)
