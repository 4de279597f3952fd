"""The load generator against two nodes: given both ports, it logs every user in, alternating
between the nodes (each node's log names the sessions it bound). Numbers are not checked."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.harness import DOMAIN, ClusterFactory
from tests.integration.harness.bench import OPEN_PLAINTEXT, run_bench

USERS = 12


def bound_users(log: Path) -> set[int]:
    return {int(n) for n in re.findall(rf" bound bu(\d+)@{re.escape(DOMAIN)}/", log.read_text())}


async def test_logins_alternate_between_two_nodes(cluster_of: ClusterFactory) -> None:
    a, b = await cluster_of(2, **OPEN_PLAINTEXT)
    population = ("--users", str(USERS), "--contacts", "2")
    # Every user registered and given its ring contacts on node-a alone.
    provision = await run_bench([a.port], "provision", *population)
    assert provision["rosters"]["users_complete"] == USERS
    assert bound_users(b.log) == set()

    login = await run_bench([a.port, b.port], "login", *population)
    assert (login["logins"], login["failures"]) == (USERS, 0)
    assert bound_users(b.log) == set(range(1, USERS, 2))
