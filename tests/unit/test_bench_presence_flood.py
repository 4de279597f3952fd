"""The abuse benchmark's presence flood, its pure parts: the flooders and their contacts, the
changes they write, the count of what they read whatever the reads, and the command line."""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

BENCH_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chorus_bench_presence_flood", BENCH_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def flooder() -> Any:
    run = bench.Run(bench.build_parser().parse_args(["abuse"]))
    run.presence_flood = bench.PresenceFlood()
    # No transport: what the handler writes goes nowhere.
    return bench.Conn(run, bench.PRESENCE_FLOOD_INDEX, "bxp0")


def test_flooders_have_indices_and_names_of_their_own() -> None:
    users = bench.flood_users(3)
    assert users == [(-3000, "bxp0"), (-3001, "bxp1"), (-3002, "bxp2")]
    # Not the roster flooder's index, nor a registration stream's.
    assert all(index != bench.FLOOD_INDEX and index < -1 - 16 for index, _ in users)


def test_consecutive_changes_differ() -> None:
    first, second = bench.flood_change(0), bench.flood_change(1)
    assert first != second
    assert first.startswith(b"<presence><show>") and first.endswith(b"</presence>")


STREAM = b"".join(
    b"<presence from='bxp%d@bench.local/bench'><show>away</show></presence>" % n
    + (b"<iq type='result' id='x%d'/>" % n if n % 4 == 0 else b"")
    for n in range(25)
)


@given(st.lists(st.integers(min_value=1, max_value=61), min_size=1, max_size=30))
def test_every_presence_is_counted_once_whatever_the_reads(sizes: list[int]) -> None:
    conn = flooder()
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(STREAM):
            break
        bench.flood_presence_data(conn, STREAM[position : position + size])
        position += size
    assert conn.run.presence_flood.presences == 25


def test_login_accounts_are_the_bystanders_own() -> None:
    accounts = bench.login_users("bxping")
    assert len(accounts) == bench.BYSTANDER_LOGIN_ACCOUNTS == len(set(accounts))
    assert all(name.startswith("bxping") and name != "bxping" for name in accounts)


def test_runqueue_wait_reads_this_process() -> None:
    assert bench.runqueue_seconds(os.getpid()) >= 0.0
    # A process that does not exist: no figure rather than a failure.
    assert bench.runqueue_seconds(2**22 + 12345) == 0.0


def test_the_phases_and_the_flood_options() -> None:
    args = bench.build_parser().parse_args(
        ["abuse", "--phases", "presence_flood", "--flooders", "8", "--flood-contacts", "4"]
    )
    assert (args.phases, args.flooders, args.flood_contacts) == ("presence_flood", 8, 4)
    defaults = bench.build_parser().parse_args(["abuse"])
    assert defaults.phases.split(",") == list(bench.ABUSE_PHASES)
    assert defaults.flooders == 20 and defaults.logins_per_s > 0


@pytest.mark.parametrize(
    "options",
    [
        ["--phases", "nothing"],
        ["--phases", ""],
        ["--flooders", "4", "--flood-contacts", "4"],
        ["--flood-contacts", "3"],
    ],
)
async def test_bad_abuse_options_are_refused_before_any_connection(options: list[str]) -> None:
    args = bench.build_parser().parse_args(["--port", "1", "abuse", *options])
    with pytest.raises(ValueError):
        await bench.scenario_abuse(bench.Run(args), args)
