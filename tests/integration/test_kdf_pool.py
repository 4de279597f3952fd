"""Key derivation off the event loop: while a storm of PLAIN logins hashes at a high iteration
count, an already logged-in client's ping is answered; logins over the pool's bound wait
rather than fail; the pool stops with the server.

The storm's accounts share one set of credentials, derived once and stored directly, so that
setting them up costs one derivation rather than two per account; each login still derives
its own key to check its password.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from chorus_presence.core.kdf_pool import KdfPool
from chorus_presence.services.credentials import derive_credentials
from tests.integration.harness.constants import PASSWORD, TIMEOUT
from tests.integration.harness.raw import PING, features, plain_token, raw_session
from tests.integration.harness.server import Harness, start_server, write_config

# About a quarter of a second per SHA-256 derivation here: the storm, done one login after
# another, would keep the loop for several seconds.
ITERATIONS = 1_000_000
STORM = 20
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
OPEN_DOORS = {
    "connections_per_address": 500,
    "connection_rate": 10000.0,
    "auth_failures": 1000,
    "auth_account_failures": 1000,
}


@pytest.mark.server_config(
    tls={"required": False}, auth={"scram_iterations": ITERATIONS}, limits=OPEN_DOORS
)
async def test_a_ping_is_answered_while_a_login_storm_hashes(harness: Harness) -> None:
    credentials = await asyncio.to_thread(derive_credentials, PASSWORD, ITERATIONS)
    names = [f"storm{index}" for index in range(STORM)]
    for name in ("watcher", *names):
        await harness.ctx.repositories.accounts.create(name, credentials)
    pool = harness.ctx.accounts.kdf
    watcher, _jid = await raw_session(harness, "watcher")
    storm = [await harness.raw() for _ in names]
    for raw in storm:
        await features(raw)

    for name, raw in zip(names, storm, strict=True):
        raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token(name)}</auth>")
    logins = [asyncio.create_task(raw.expect(b"<success", timeout=60)) for raw in storm]
    # Once the storm is under way, its first login through.
    await asyncio.wait(logins, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    watcher.send(PING.format(id="during-storm"))
    # Well below the storm's hashing done serially.
    await watcher.expect(rb"id=\"during-storm\"", timeout=TIMEOUT / 4)

    # Answered while keys were being derived: a loop deriving them itself serves nothing
    # else meanwhile, so it would have none in flight whenever it answered.
    assert pool.in_flight > 0
    assert any(not login.done() for login in logins), "the storm ended before the ping"
    await asyncio.wait_for(asyncio.gather(*logins), 60)


async def test_derivations_over_the_bound_wait_and_all_complete() -> None:
    pool = KdfPool(workers=1, queued=1)
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    gate = threading.Event()

    def first() -> str:
        loop.call_soon_threadsafe(started.set)
        gate.wait(TIMEOUT)
        return "first"

    try:
        runs = [asyncio.create_task(pool.run(first))]
        runs += [asyncio.create_task(pool.run(str, number)) for number in range(5)]
        await asyncio.wait_for(started.wait(), TIMEOUT)
        # One in the pool; the other five wait for its place, none failed.
        assert pool.in_flight == 1
        assert not any(run.done() for run in runs)
        gate.set()
        results = await asyncio.wait_for(asyncio.gather(*runs), TIMEOUT)
        assert results == ["first", "0", "1", "2", "3", "4"]
        assert pool.in_flight == 0
    finally:
        gate.set()
        pool.shutdown()


async def test_the_pool_stops_with_the_server(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    running = await start_server(write_config(tmp_path, tls_files), tls_files[0])
    pool = running.ctx.accounts.kdf
    assert await pool.run(str, 1) == "1"
    await running.close()
    with pytest.raises(RuntimeError):
        await pool.run(str, 2)
