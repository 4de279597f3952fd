"""An aiohttp WebSocket dressed as the reader and writer the c2s stream layer uses.

Closing the writer ends the connection as RFC 7395 section 3.6 asks: what is queued (the stream
error and `<close/>` among it) goes out, then the WebSocket closing handshake; aborting it cuts
the TCP connection under the socket.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from chorus_presence.web import framing

# Like an asyncio transport's flow control: once more than HIGH_WATER bytes are queued, drain()
# waits until the queue is down to LOW_WATER, so that the stream stops reading a client that
# does not read its answers.
HIGH_WATER = 65536
LOW_WATER = 16384


class WebSocketReader:
    def __init__(self, socket: web.WebSocketResponse) -> None:
        self._socket = socket

    async def read(self, _size: int) -> bytes:
        """The next message as stream bytes; b'' once the socket is closed."""
        while True:
            message = await self._socket.receive()
            if message.type == WSMsgType.TEXT:
                return framing.inbound(message.data)
            if message.type == WSMsgType.BINARY:
                # RFC 7395 section 3.2: XMPP travels in text frames only.
                return b"<binary-frame/>"
            if message.type in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                return b""


class _Transport:
    def __init__(self, writer: WebSocketWriter) -> None:
        self._writer = writer

    def get_write_buffer_size(self) -> int:
        return self._writer.queued_bytes

    def is_closing(self) -> bool:
        return self._writer.closing

    def abort(self) -> None:
        self._writer.abort()


class WebSocketWriter:
    """Writes are synchronous for the stream layer; a task sends them in order."""

    def __init__(
        self,
        socket: web.WebSocketResponse,
        peer: tuple[str, int] | None,
        connection: asyncio.Transport | None,
    ) -> None:
        self._socket = socket
        self._peer = peer
        # The HTTP connection the socket runs on, for abort().
        self._connection = connection
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.queued_bytes = 0
        self.closing = False
        self.transport = _Transport(self)
        self._drained = asyncio.Event()
        self._drained.set()
        self._sender = asyncio.get_running_loop().create_task(self._send_all())

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.writelines([data])

    def writelines(self, data: list[bytes]) -> None:
        """Queue each piece as its own message or messages (RFC 7395 section 3.3.3: one
        complete element per message); what one loop turn wrote wakes the sender once."""
        for piece in data:
            for message in framing.outbound(piece):
                self.queued_bytes += len(message)
                self._queue.put_nowait(message)
        if self.queued_bytes > HIGH_WATER:
            self._drained.clear()

    async def drain(self) -> None:
        """Wait while the queue is above the high-water mark, until the client has taken it
        down to the low one; ConnectionResetError once the socket is closing."""
        await self._drained.wait()
        if self.closing:
            raise ConnectionResetError("the WebSocket is closed")

    def close(self) -> None:
        if not self.closing:
            self._queue.put_nowait(None)
        self._closing()

    def abort(self) -> None:
        """Drop the connection now: nothing more is sent, not even a close frame, which a
        client that does not read would never take."""
        self._closing()
        self._sender.cancel()
        if self._connection is not None:
            self._connection.abort()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender

    async def _send_all(self) -> None:
        try:
            while (message := await self._queue.get()) is not None:
                self.queued_bytes -= len(message)
                if self.queued_bytes <= LOW_WATER:
                    self._drained.set()
                await self._socket.send_str(message)
        except ConnectionError:
            pass
        finally:
            # Nothing queued will be sent now: a stream waiting in drain() must not wait on.
            self._closing()
        # Not when aborted (cancelled): the closing handshake, which waits for the client's
        # close frame as long as the socket's timeout, dropping whatever comes before it.
        await self._socket.close()

    def _closing(self) -> None:
        self.closing = True
        # Wakes a drain() that is waiting, to find the socket closing.
        self._drained.set()
