"""Many clients dropping at once, on uvloop (the loop `serve` uses): every contact that stays
must still be told each of them went offline.

uvloop raises on a write to a transport the peer has reset but whose stream has not noticed
yet; plain asyncio drops such writes silently, so this module runs on uvloop.
"""

from __future__ import annotations

import socket
import struct

import pytest
import uvloop

from tests.integration.harness import Harness, Inbox, link, raw_login

QUITTERS = 6


@pytest.fixture(scope="module")
def event_loop_policy() -> uvloop.EventLoopPolicy:
    return uvloop.EventLoopPolicy()


@pytest.mark.server_config(tls={"required": False})
async def test_contacts_hear_of_every_client_that_drops_at_once(harness: Harness) -> None:
    names = [f"q{i}" for i in range(QUITTERS)]
    for name in [*names, "watcher"]:
        await harness.add_user(name)
    # The quitters know each other first, so each broadcast meets dead peers before the watcher.
    for index, name in enumerate(names):
        for other in names[index + 1 :]:
            await link(harness, name, other)
    for name in names:
        await link(harness, name, "watcher")
    watcher = await harness.login("watcher")
    inbox = Inbox(watcher)
    watcher.send_presence()
    quitters = []
    for name in names:
        raw = await raw_login(harness, name)
        raw.send("<presence/>")
        quitters.append(raw)
        await inbox.get(lambda p, name=name: p["from"].user == name and p["type"] == "available")
    for raw in quitters:
        # SO_LINGER 0: the close sends RST, the way a crashing client disappears.
        sock = raw.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.writer.transport.abort()
    for name in names:
        await inbox.get(lambda p, name=name: p["from"].user == name and p["type"] == "unavailable")
