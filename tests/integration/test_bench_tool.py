"""The benchmark's load generator, run once at a tiny size against a real server, so the tool
is known to work. It reports numbers; this test checks only that they are complete and that
nothing was lost, never how fast anything was."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.integration.harness import DOMAIN, Harness

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
OPEN_PLAINTEXT = {
    "tls": {"required": False},
    "registration": {"open": True, "exempt_addresses": ["127.0.0.0/8"]},
    # As scripts/bench-compare lifts them: a login counts as failed while its password is
    # checked, so fifty logins in flight from one address would pass auth_failures.
    "limits": {"subscriptions_per_minute": 100000, "auth_failures": 1000000},
}


async def bench(harness: Harness, *args: str) -> dict:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH),
        "--port",
        str(harness.port),
        "--domain",
        DOMAIN,
        "--deadline",
        "60",
        "--no-uvloop",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stdout
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["ok"] is True, result
    return result


@pytest.mark.server_config(**OPEN_PLAINTEXT)
async def test_bench_runs_at_n_20(harness: Harness) -> None:
    population = ("--users", "20", "--contacts", "4")
    provision = await bench(harness, "provision", *population)
    assert provision["rosters"]["users_complete"] == 20
    login = await bench(harness, "login", *population)
    assert (login["logins"], login["failures"]) == (20, 0)
    fanout = await bench(
        harness,
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
    ghost = await bench(harness, "ghost", *population, "--victims", "2")
    assert ghost["abrupt_fin"]["not_seen"] == 0


@pytest.mark.server_config(**OPEN_PLAINTEXT)
async def test_bench_abuse_at_a_tiny_size(harness: Harness) -> None:
    abuse = await bench(
        harness,
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
