"""The load generator against two nodes: given both ports, it logs every user in, alternating
between the nodes (each node's log names the sessions it bound). Numbers are not checked."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from tests.integration.harness import DOMAIN, ClusterFactory

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
# As scripts/bench-compare runs the servers: plaintext, in-band registration from loopback,
# logins not throttled.
OPEN_PLAINTEXT = {
    "tls": {"required": False},
    "registration": {"open": True, "exempt_addresses": ["127.0.0.0/8"]},
    "limits": {"subscriptions_per_minute": 100000, "auth_failures": 1000000},
}
USERS = 12


async def bench(ports: list[int], *args: str) -> dict:
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
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["ok"] is True, result
    return result


def bound_users(log: Path) -> set[int]:
    return {int(n) for n in re.findall(rf" bound bu(\d+)@{re.escape(DOMAIN)}/", log.read_text())}


async def test_logins_alternate_between_two_nodes(cluster_of: ClusterFactory) -> None:
    a, b = await cluster_of(2, **OPEN_PLAINTEXT)
    population = ("--users", str(USERS), "--contacts", "2")
    # Every user registered and given its ring contacts on node-a alone.
    provision = await bench([a.port], "provision", *population)
    assert provision["rosters"]["users_complete"] == USERS
    assert bound_users(b.log) == set()

    login = await bench([a.port, b.port], "login", *population)
    assert (login["logins"], login["failures"]) == (USERS, 0)
    assert bound_users(b.log) == set(range(1, USERS, 2))
