"""`chorus-presence routing ...`: which of a user's devices rings, decided by presence.

`routing set` replaces the whole configuration, which the server validates (device kinds,
states, that the default and the mapped devices exist).
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from chorus_presence.cli.common import (
    USAGE,
    CliError,
    console,
    json_option,
    print_json,
    user_argument,
    yes_no,
)
from chorus_presence.cli.connection import call
from chorus_presence.config import Config


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "routing",
        help="presence-driven call routing",
        description="A user's devices and the device that rings for each state.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show", help="a user's configuration", description="Show a user's call routing."
    )
    user_argument(show)
    json_option(show)
    show.set_defaults(handler=_show)

    set_ = actions.add_parser(
        "set",
        help="replace a user's configuration",
        description="Replace the user's whole call routing: what is not given is gone.",
    )
    user_argument(set_)
    set_.add_argument(
        "--device",
        action="append",
        default=[],
        dest="devices",
        type=_device,
        metavar="NAME:KIND",
        help="a device; KIND is desk-phone, mobile, softphone, voicemail or other (repeat)",
    )
    set_.add_argument("--default", metavar="NAME", help="the device that rings by default")
    set_.add_argument(
        "--map",
        action="append",
        default=[],
        dest="mapping",
        type=_mapping,
        metavar="STATE=NAME",
        help="the device for a state (available, away, brb, dnd, busy, in-meeting, offline)",
    )
    switch = set_.add_mutually_exclusive_group()
    switch.add_argument(
        "--on", dest="enabled", action="store_true", help="presence decides which device rings"
    )
    switch.add_argument(
        "--off", dest="enabled", action="store_false", help="the default device rings (default)"
    )
    json_option(set_)
    set_.set_defaults(handler=_set, enabled=False)

    route = actions.add_parser(
        "route", help="the device ringing now", description="Which device rings for USER now."
    )
    user_argument(route)
    json_option(route)
    route.set_defaults(handler=_route)

    for name, summary in (
        ("grant", "let USER ask any user's route (a PBX's account)"),
        ("revoke", "withdraw that permission"),
    ):
        action = actions.add_parser(name, help=summary, description=summary.capitalize() + ".")
        user_argument(action)
        json_option(action)
        action.set_defaults(handler=_permission, command=f"routing.{name}")


def _device(text: str) -> dict[str, str]:
    # Kinds have no colon, so the last one separates the name from the kind.
    name, colon, kind = text.rpartition(":")
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:KIND, got {text!r}")
    return {"name": name, "kind": kind}


def _mapping(text: str) -> tuple[str, str]:
    # States have no '=', so the first one separates the state from the device name.
    state, equals, name = text.partition("=")
    if not equals or not state or not name:
        raise argparse.ArgumentTypeError(f"expected STATE=NAME, got {text!r}")
    return state, name


def _show(args: argparse.Namespace, config: Config) -> int:
    _print(args, call(config, "routing.show", user=args.user))
    return 0


def _set(args: argparse.Namespace, config: Config) -> int:
    states = [state for state, _ in args.mapping]
    duplicates = sorted({state for state in states if states.count(state) > 1})
    if duplicates:
        raise CliError(f"--map names a device twice for {', '.join(duplicates)}", USAGE)
    result = call(
        config,
        "routing.set",
        user=args.user,
        devices=args.devices,
        mapping=dict(args.mapping),
        enabled=args.enabled,
        default=args.default,
    )
    _print(args, result)
    return 0


def _route(args: argparse.Namespace, config: Config) -> int:
    answer = call(config, "routing.route", user=args.user)
    if args.json:
        print_json(answer)
    elif answer["device"] is None:
        console.print(
            f"{escape(answer['user'])} is {answer['state']}: no device rings", soft_wrap=True
        )
    else:
        console.print(
            f"{escape(answer['user'])} is {answer['state']}: {escape(answer['device'])}"
            f" ({answer['kind']}) rings",
            soft_wrap=True,
        )
    return 0


def _permission(args: argparse.Namespace, config: Config) -> int:
    _print(args, call(config, args.command, user=args.user))
    return 0


def _print(args: argparse.Namespace, routing: dict) -> None:
    if args.json:
        print_json(routing)
        return
    console.print(
        f"{escape(routing['user'])}: presence decides {yes_no(routing['enabled'])}, default"
        f" device {escape(routing['default'] or '(none)')}, may ask any user's route"
        f" {yes_no(routing['permission'])}",
        soft_wrap=True,
    )
    devices = Table("Device", "Kind", "Rings when")
    for device in routing["devices"]:
        states = [state for state, name in routing["map"].items() if name == device["name"]]
        devices.add_row(escape(device["name"]), device["kind"], ", ".join(states))
    console.print(devices)
