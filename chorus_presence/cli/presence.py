"""`chorus-presence presence show`, `session list|kick` and `stats`: the live state of the
running server. These need the server: while it is stopped they say so and exit 1."""

from __future__ import annotations

import argparse
import time

from rich.markup import escape

from chorus_presence.cli.common import console, count, json_option, print_json, yes_no
from chorus_presence.cli.connection import call, connect
from chorus_presence.cli.tables import Table
from chorus_presence.config import Config

KIND_LABELS = {"message": "Messages", "presence": "Presence", "iq": "IQs"}


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    presence = commands.add_parser(
        "presence", help="who is online, and how", description="Live presence."
    )
    presence_actions = presence.add_subparsers(title="actions", metavar="ACTION", required=True)
    show = presence_actions.add_parser(
        "show",
        help="resources, states and effective state",
        description="Show a user's online resources, each with its state, status and"
        " priority, and the user's effective state; without USER, every user online.",
    )
    show.add_argument("user", metavar="USER", nargs="?", help="localpart or bare JID")
    json_option(show)
    show.set_defaults(handler=_presence)

    session = commands.add_parser(
        "session", help="client sessions", description="Client sessions of the running server."
    )
    session_actions = session.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = session_actions.add_parser(
        "list", help="every session", description="List every bound client session."
    )
    json_option(listing)
    listing.set_defaults(handler=_sessions)
    kick = session_actions.add_parser(
        "kick",
        help="end a session",
        description="End a session (a full JID, user@domain/resource) or every session of"
        " an account (a localpart or bare JID) with the stream error policy-violation.",
    )
    kick.add_argument("jid", metavar="JID", help="full JID, bare JID or localpart")
    json_option(kick)
    kick.set_defaults(handler=_kick)

    stats = commands.add_parser(
        "stats",
        help="sessions, stanza rates, presence deliveries, auth failures",
        description="Counts of sessions and accounts, and the stanza, presence delivery and"
        " authentication failure counters since the server started, with their rates per"
        " second measured over --interval.",
    )
    stats.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how long to measure the rates over (default: 1)",
    )
    json_option(stats)
    stats.set_defaults(handler=_stats)


def _presence(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "presence.show", user=args.user)
    if args.json:
        print_json(result)
        return 0
    users = [result] if args.user is not None else result
    if not users:
        console.print("Nobody is online")
        return 0
    table = Table(
        "User",
        "Effective state",
        "Resource",
        "State",
        "Status",
        "Priority",
        caption=f"{count(len(users), 'user')} online" if args.user is None else None,
        grouped=2,
    )
    for user in users:
        own = (user["jid"], user["effective_state"])
        if not user["resources"]:
            table.add_row(*own, "", "", "", "")
        for resource in user["resources"]:
            table.add_row(
                *own,
                resource["resource"],
                resource["state"],
                resource["status"] or "",
                str(resource["priority"]),
            )
    table.print()
    return 0


def _sessions(args: argparse.Namespace, config: Config) -> int:
    sessions = call(config, "session.list")
    if args.json:
        print_json(sessions)
        return 0
    if not sessions:
        console.print("No sessions")
        return 0
    # A cluster's rows say which node holds each session; a single server's do not.
    nodes = ("Node",) if any("node" in session for session in sessions) else ()
    table = Table(
        "JID",
        "Peer",
        "TLS",
        "State",
        "Resumable",
        "Hibernating",
        "Inactive",
        *nodes,
        caption=count(len(sessions), "session"),
    )
    for session in sessions:
        table.add_row(
            session["jid"],
            session["peer"],
            yes_no(session["tls"]),
            session["state"] or "(no presence)",
            yes_no(session["resumable"]),
            yes_no(session["hibernating"]),
            yes_no(session["inactive"]),
            *((session.get("node", ""),) if nodes else ()),
        )
    table.print()
    return 0


def _kick(args: argparse.Namespace, config: Config) -> int:
    result = call(config, "session.kick", jid=args.jid)
    if args.json:
        print_json(result)
        return 0
    for jid in result["kicked"]:
        console.print(f"Ended the session of {escape(jid)}", soft_wrap=True)
    return 0


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    # NaN fails the comparison too.
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _stats(args: argparse.Namespace, config: Config) -> int:
    with connect(config) as admin:
        before = admin.call("stats")
        # Waiting here, not in the server: it keeps serving while the rates are measured.
        time.sleep(args.interval)
        after = admin.call("stats")
    elapsed = after.pop("clock") - before.pop("clock")
    after["rates"] = {
        "stanzas_received": _rates(before["stanzas_received"], after["stanzas_received"], elapsed),
        "stanzas_sent": _rates(before["stanzas_sent"], after["stanzas_sent"], elapsed),
        "presence_deliveries": _rate(
            before["presence_deliveries"], after["presence_deliveries"], elapsed
        ),
        "auth_failures": _rate(before["auth_failures"], after["auth_failures"], elapsed),
    }
    if args.json:
        print_json(after)
        return 0
    table = Table("Server", "Now")
    for label, key in (
        ("Sessions", "sessions"),
        ("Users online", "online_users"),
        ("Available resources", "available_resources"),
        ("Hibernating sessions", "hibernating"),
        ("Accounts", "accounts"),
    ):
        table.add_row(label, str(after[key]))
    table.print()
    console.print()
    counters = Table("Counters", "Since start", "Per second")
    rates = after["rates"]
    for direction in ("received", "sent"):
        for kind, total in after[f"stanzas_{direction}"].items():
            rate = rates[f"stanzas_{direction}"][kind]
            label = f"{KIND_LABELS.get(kind, kind)} {direction}"
            counters.add_row(label, str(total), f"{rate:.1f}")
    for label, key in (
        ("Presence deliveries", "presence_deliveries"),
        ("Auth failures", "auth_failures"),
    ):
        counters.add_row(label, str(after[key]), f"{rates[key]:.1f}")
    counters.print()
    return 0


def _rates(before: dict[str, int], after: dict[str, int], elapsed: float) -> dict[str, float]:
    return {kind: _rate(before[kind], after[kind], elapsed) for kind in after}


def _rate(before: int, after: int, elapsed: float) -> float:
    return (after - before) / elapsed
