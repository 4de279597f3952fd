"""SIGTERM on the real server process: contacts are told, streams end with system-shutdown,
the exit code is 0, and the next start shows nobody online."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    Harness,
    Inbox,
    ServerProcess,
    ok,
    presence_of,
    wait_first,
    write_config,
)

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


async def add_user(config: Path, name: str) -> None:
    await ok(config, "user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")


async def test_sigterm_tells_contacts_and_exits_cleanly(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(tmp_path, tls_files)
    for name in ("alice", "bob"):
        await add_user(config, name)
    server = await ServerProcess.start(config)
    harness = Harness(server, tls_files[0])
    try:
        clients, inboxes, errors = {}, {}, {}
        for name in ("alice", "bob"):
            client = await harness.login(name)
            client.auto_authorize = None
            client.auto_subscribe = False
            inboxes[name] = Inbox(client)
            errors[name] = []
            client.add_event_handler(
                "stream_error", lambda error, name=name: errors[name].append(error["condition"])
            )
            client.send_presence()
            clients[name] = client
        alice, bob = clients["alice"], clients["bob"]
        bob.send_presence(pto=ALICE, ptype="subscribe")
        await inboxes["alice"].get(presence_of(alice, "subscribe", BOB))
        alice.send_presence(pto=BOB, ptype="subscribed")
        await inboxes["bob"].get(presence_of(bob, "available", f"{ALICE}/test"))

        disconnected = asyncio.ensure_future(
            wait_first(bob, ("disconnected",), lambda: server.process.send_signal(signal.SIGTERM))
        )
        await inboxes["bob"].get(presence_of(bob, "unavailable", f"{ALICE}/test"))
        await disconnected
        assert errors["bob"] == ["system-shutdown"]
        async with asyncio.timeout(TIMEOUT):
            assert await server.process.wait() == 0

        # Started again on the same database: nobody is online, the subscription is kept.
        server = await ServerProcess.start(config)
        harness.server = server
        bob = await harness.login("bob", resource="again")
        inbox = Inbox(bob)
        bob.send_presence()
        await inbox.get(presence_of(bob, "available", f"{BOB}/again"))
        roster = await bob.get_roster()
        assert roster["roster"]["items"][ALICE]["subscription"] == "to"
        assert [p for p in inbox.drain() if p["from"].bare == ALICE] == []
    finally:
        for client in harness.clients:
            if client.transport is not None:
                client.abort()
        await server.stop()
