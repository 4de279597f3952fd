"""Every client stream from accept to close, over TCP or WebSocket, bound or still negotiating:
what a shutdown ends with a stream error and waits for.

The session registry knows the bound sessions only; a stream in the middle of its STARTTLS or
SASL exchange, or one lingering after its stream error, is here too, so that nothing outlives
the server's stop.

While streams are open, every PARK_SECONDS each one is asked to park its XML parser if its
client sent nothing since the last time (`xmpp/parser.py`): an idle session holds no libxml2
parser, and one timer for the server does it rather than one per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Protocol

from chorus_presence.xmpp.errors import StreamError

# How long cancelled tasks get to run their clean-up (aborting their connection) before the
# stop goes on without them.
CANCEL_SECONDS = 0.5
# A stream whose client sent nothing for one whole period parks its parser. Several times the
# gap between two stanzas of a busy client, so that one pays for a new parser (about as much as
# 15 stanzas) only after a pause, and never while it talks.
PARK_SECONDS = 5.0


class Closable(Protocol):
    def close(self, error: StreamError | None = None) -> None: ...

    def park_if_quiet(self) -> object: ...


class Connections:
    """The open streams, each with the task that runs it and a future set when it ends (the
    task may go on: aiohttp's serves the HTTP connection the WebSocket ran on)."""

    def __init__(self) -> None:
        self._open: dict[Closable, tuple[asyncio.Task[object], asyncio.Future[None]]] = {}
        self._parking: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def running(self, stream: Closable) -> Iterator[None]:
        """Count `stream` as open, run by the current task, for the duration of the block."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        ended = loop.create_future()
        self._open[stream] = (task, ended)
        if self._parking is None:
            self._parking = loop.call_later(PARK_SECONDS, self._park_quiet, loop)
        try:
            yield
        finally:
            del self._open[stream]
            ended.set_result(None)

    def park_quiet(self) -> None:
        """Have every stream whose client sent nothing since the last call park its parser."""
        for stream in self._open:
            stream.park_if_quiet()

    def _park_quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        self.park_quiet()
        self._parking = (
            loop.call_later(PARK_SECONDS, self._park_quiet, loop) if self._open else None
        )

    def close_all(self, error: StreamError) -> None:
        for stream in list(self._open):
            stream.close(error)

    async def wait_closed(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for every stream to end; then cancel the tasks of
        those still running, and give them CANCEL_SECONDS to let go of their connections."""
        running = list(self._open.values())
        if not running:
            return
        await asyncio.wait([ended for _task, ended in running], timeout=timeout)
        late = [(task, ended) for task, ended in running if not ended.done()]
        for task, _ended in late:
            task.cancel()
        if late:
            await asyncio.wait([ended for _task, ended in late], timeout=CANCEL_SECONDS)
