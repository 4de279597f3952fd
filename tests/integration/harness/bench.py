"""Running scripts/bench.py, the benchmark's load generator, against servers the tests started,
configured as scripts/bench-compare runs them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.integration.harness.constants import DOMAIN

BENCH = Path(__file__).resolve().parents[3] / "scripts" / "bench.py"
# As scripts/bench-compare runs the servers: plaintext, in-band registration from loopback, and
# the limits lifted: a login counts as failed while its password is checked, so fifty logins in
# flight from one address would pass auth_failures.
OPEN_PLAINTEXT = {
    "tls": {"required": False},
    "registration": {"open": True, "exempt_addresses": ["127.0.0.0/8"]},
    "limits": {"subscriptions_per_minute": 100000, "auth_failures": 1000000},
}


async def run_bench(ports: list[int], *args: str) -> dict[str, Any]:
    """One bench.py scenario against `ports` (connection i to port i mod n); its JSON result,
    which must say ok."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH),
        "--port",
        ",".join(str(port) for port in ports),
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
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["ok"] is True, result
    return result
