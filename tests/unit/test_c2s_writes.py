"""The c2s stream's write path on an in-memory connection: what one loop turn writes to a
stream reaches the transport in one call, in order, within the send buffer cap, and a close
sends what was queued before it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chorus_presence.server.c2s import ClientStream
from chorus_presence.xmpp.errors import StreamError
from tests.unit.fakes import DOMAIN, World, open_world

HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as world:
        yield world


class MemoryTransport:
    def __init__(self) -> None:
        self.closing = False
        self.aborted = False
        self.buffered = 0

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = self.closing = True


class MemoryWriter:
    """A connection in memory: every call that hands it bytes is one entry of `calls`, and
    `close` is recorded in the same list, so the order of both can be checked."""

    def __init__(self) -> None:
        self.transport = MemoryTransport()
        self.calls: list[list[bytes] | str] = []
        self.closed = asyncio.Event()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.calls.append([data])

    def writelines(self, data: list[bytes]) -> None:
        self.calls.append(list(data))

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.transport.closing = True
        self.calls.append("close")
        self.closed.set()

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def written(self) -> bytes:
        return b"".join(b"".join(call) for call in self.calls if call != "close")


class MemoryReader:
    def __init__(self) -> None:
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()

    async def read(self, _size: int) -> bytes:
        return await self.chunks.get()


def stream_on(world: World) -> tuple[ClientStream, MemoryReader, MemoryWriter]:
    reader, writer = MemoryReader(), MemoryWriter()
    stream = ClientStream(world.components.streams, reader, writer)
    return stream, reader, writer


async def test_writes_of_one_turn_reach_the_transport_in_one_call(world: World) -> None:
    stream, _reader, writer = stream_on(world)
    stanzas = [b"<message id='%d'/>" % n for n in range(5)]
    for stanza in stanzas:
        stream.send_bytes(stanza)
    stream.write_nonza(b"<r xmlns='urn:xmpp:sm:3'/>")
    # Nothing is written while the turn that queued it goes on.
    assert writer.calls == []
    await asyncio.sleep(0)
    assert writer.calls == [[*stanzas, b"<r xmlns='urn:xmpp:sm:3'/>"]]
    # The next turn's writes are a call of their own.
    stream.send_bytes(b"<message id='later'/>")
    await asyncio.sleep(0)
    assert writer.calls[1:] == [[b"<message id='later'/>"]]


async def test_what_is_queued_counts_against_the_send_buffer(world: World) -> None:
    stream, _reader, writer = stream_on(world)
    cap = world.components.config.liveness.send_buffer
    writer.transport.buffered = cap // 2
    big = b"<message>" + b"x" * (cap // 4) + b"</message>"
    stream.send_bytes(big)
    assert not writer.transport.aborted
    # Neither write alone passes the cap with what the transport holds; together they do.
    stream.send_bytes(big)
    assert writer.transport.aborted
    await asyncio.sleep(0)
    assert writer.calls == []


async def test_a_stream_error_goes_out_before_the_close(world: World) -> None:
    stream, reader, writer = stream_on(world)
    task = asyncio.create_task(stream.run())
    reader.chunks.put_nowait(HEADER.format(to="elsewhere.example").encode())
    await asyncio.wait_for(writer.closed.wait(), 5)
    assert writer.calls[-1] == "close"
    written = writer.written()
    assert written.startswith(b"<?xml")
    assert b"<host-unknown" in written
    assert written.endswith(b"</stream:error></stream:stream>")
    reader.chunks.put_nowait(b"")
    await asyncio.wait_for(task, 5)


async def test_a_close_from_outside_sends_what_was_queued_first(world: World) -> None:
    stream, reader, writer = stream_on(world)
    task = asyncio.create_task(stream.run())
    reader.chunks.put_nowait(HEADER.format(to=DOMAIN).encode())
    while b"<stream:features" not in writer.written():
        await asyncio.sleep(0)
    # In one turn: a stanza, then the close; neither has reached the transport yet.
    stream.send_bytes(b"<message id='last'/>")
    stream.close(StreamError("system-shutdown"))
    await asyncio.wait_for(writer.closed.wait(), 5)
    assert writer.calls[-1] == "close"
    written = writer.written()
    last = written.index(b"<message id='last'/>")
    assert last < written.index(b"<system-shutdown") < written.index(b"</stream:stream>")
    reader.chunks.put_nowait(b"")
    await asyncio.wait_for(task, 5)
