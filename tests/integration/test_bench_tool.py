"""The benchmark's load generator, run once at a tiny size against a real server, so the tool
is known to work. It reports numbers; this test checks only that they are complete and that
nothing was lost, never how fast anything was."""

from __future__ import annotations

import pytest

from tests.integration.harness import Harness
from tests.integration.harness.bench import OPEN_PLAINTEXT, run_bench


@pytest.mark.server_config(**OPEN_PLAINTEXT)
async def test_bench_runs_at_n_20(harness: Harness) -> None:
    population = ("--users", "20", "--contacts", "4")
    provision = await run_bench([harness.port], "provision", *population)
    assert provision["rosters"]["users_complete"] == 20
    login = await run_bench([harness.port], "login", *population)
    assert (login["logins"], login["failures"]) == (20, 0)
    fanout = await run_bench(
        [harness.port],
        "fanout",
        *population,
        "--changes",
        "2",
        "--max-steps",
        "2",
        "--step-seconds",
        "0.5",
        "--drain",
        "5",
        "--burst-drain",
        "5",
    )
    assert fanout["burst"]["lost"] == 0 and fanout["burst"]["received"] > 0
    ghost = await run_bench([harness.port], "ghost", *population, "--victims", "2")
    assert ghost["abrupt_fin"]["not_seen"] == 0


@pytest.mark.server_config(**OPEN_PLAINTEXT)
async def test_bench_abuse_at_a_tiny_size(harness: Harness) -> None:
    abuse = await run_bench(
        [harness.port],
        "abuse",
        "--seconds",
        "1",
        "--warmup",
        "0.2",
        "--roster-items",
        "30",
        "--resources",
        "4",
        "--settle-limit",
        "5",
    )
    assert abuse["provisioning"]["roster"]["items"] == 30
    assert abuse["provisioning"]["roster"]["failed"] == 0
    for phase in ("baseline", "roster_flood", "presence_storm"):
        pings = abuse[phase]["bystander"]
        # 1 s at the default 20 pings/s, every one answered.
        assert (pings["pings"], pings["answered"], pings["unanswered"]) == (20, 20, 0), phase
        assert 0 < pings["p50_ms"] <= pings["p99_ms"] <= pings["max_ms"], phase
    flood = abuse["roster_flood"]["abuser"]
    assert flood["gets_sent"] > 0 and flood["sessions"] >= 1
    assert flood["rosters_received"] > 0
    storm = abuse["presence_storm"]["abuser"]
    assert storm["online"] == 4 and storm["refused"] == 0
    assert storm["changes"] > 0 and storm["presences_received"] > 0
