"""`chorus-presence routing ...`: which of a user's devices rings, decided by presence.

`routing set` changes the settings it is given and keeps the others; the server validates the
result (device kinds, states, that the default and the mapped devices exist). A device is
written `KIND:NAME`, as in the ad-hoc command.
"""

from __future__ import annotations

import argparse

from rich.markup import escape

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
from chorus_presence.cli.tables import Table
from chorus_presence.config import Config
from chorus_presence.services.call_routing import KINDS, STATES, parse_device


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
        help="change a user's configuration",
        description="Change the settings given; the others stay as they are. --device gives"
        " the whole list of devices, --map one state's device at a time. The server refuses a"
        " change that leaves the default or a state naming a device that is gone.",
    )
    user_argument(set_)
    devices = set_.add_mutually_exclusive_group()
    devices.add_argument(
        "--device",
        action="append",
        dest="devices",
        type=_device,
        metavar="KIND:NAME",
        help=f"a device, such as desk-phone:Desk; KIND is {', '.join(KINDS)}; repeat for"
        " each device: together they replace the user's devices",
    )
    devices.add_argument(
        "--no-devices", dest="devices", action="store_const", const=[], help="remove every device"
    )
    default = set_.add_mutually_exclusive_group()
    default.add_argument("--default", metavar="NAME", help="the device that rings by default")
    default.add_argument("--no-default", action="store_true", help="no device rings by default")
    set_.add_argument(
        "--map",
        action="append",
        default=[],
        dest="mapping",
        type=_mapping,
        metavar="STATE=NAME",
        help=f"the device that rings in STATE ({', '.join(STATES)}); repeat for each state",
    )
    set_.add_argument(
        "--unmap",
        action="append",
        default=[],
        choices=STATES,
        metavar="STATE",
        help="STATE rings the default device again (repeat for each state)",
    )
    switch = set_.add_mutually_exclusive_group()
    switch.add_argument(
        "--on",
        dest="enabled",
        action="store_true",
        default=None,
        help="presence decides which device rings",
    )
    switch.add_argument(
        "--off", dest="enabled", action="store_false", help="the default device always rings"
    )
    json_option(set_)
    set_.set_defaults(handler=_set)

    route = actions.add_parser(
        "route",
        help="the device ringing now",
        description="Which device rings for USER now; with --caller, for a call from CALLER:"
        " one on USER's priority list rings the device of Available while USER is in Do Not"
        " Disturb, Busy or In Meeting.",
    )
    user_argument(route)
    route.add_argument(
        "--caller", metavar="CALLER", help="who calls: localpart (bob) or JID (bob@domain)"
    )
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
    try:
        device = parse_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return {"name": device.name, "kind": device.kind}


def _mapping(text: str) -> tuple[str, str]:
    # States have no '=', so the first one separates the state from the device name.
    state, equals, name = text.partition("=")
    if not equals or not state or not name:
        raise argparse.ArgumentTypeError(
            f"Write a state's device as STATE=NAME, such as dnd=Voicemail, not {text!r}"
        )
    return state, name


def _show(args: argparse.Namespace, config: Config) -> int:
    _print(args, call(config, "routing.show", user=args.user))
    return 0


def _set(args: argparse.Namespace, config: Config) -> int:
    changes: dict[str, object] = {}
    if args.enabled is not None:
        changes["enabled"] = args.enabled
    if args.no_default:
        changes["default"] = None
    elif args.default is not None:
        changes["default"] = args.default
    if args.devices is not None:
        changes["devices"] = args.devices
    mapping: dict[str, str | None] = {}
    for state, name in args.mapping:
        if state in mapping:
            raise CliError(f"The state {state} is mapped twice", USAGE)
        mapping[state] = name
    for state in args.unmap:
        if state in mapping:
            raise CliError(f"The state {state} is both mapped and unmapped", USAGE)
        mapping[state] = None
    if mapping:
        changes["map"] = mapping
    if not changes:
        raise CliError(
            "Nothing to change: give --device, --default, --map, --unmap, --on or --off", USAGE
        )
    _print(args, call(config, "routing.set", user=args.user, **changes))
    return 0


def _route(args: argparse.Namespace, config: Config) -> int:
    arguments = {"user": args.user}
    if args.caller is not None:
        arguments["caller"] = args.caller
    answer = call(config, "routing.route", **arguments)
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
        devices.add_row(device["name"], device["kind"], ", ".join(states))
    devices.print()
