"""The HTTP listener (`[web]`): XMPP over WebSocket at /xmpp-websocket and the portal at /."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from chorus_presence.server.c2s import LINGER_SECONDS, ClientStream, StreamContext
from chorus_presence.web.transport import WebSocketReader, WebSocketWriter

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PATH = "/xmpp-websocket"
# What aiohttp gives handlers still running when the listener stops. By then the server has
# closed every stream and waited for it, so this only bounds the unexpected.
SHUTDOWN_SECONDS = 0.5


class WebListener:
    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    async def start(self) -> None:
        config = self.ctx.config.web
        app = web.Application()
        app.router.add_get(PATH, self._websocket)
        app.router.add_get("/", self._index)
        app.router.add_static("/", STATIC, show_index=False)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, config.host, config.port)
        await self._site.start()
        self.port = self._runner.addresses[0][1]
        log.info("web portal on http://%s:%d/", config.host, self.port)

    async def stop_accepting(self) -> None:
        """Take no more connections; the open ones go on until they are closed."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        """Stop accepting, and let go of every connection: the streams on them should be
        closed first, as aiohttp cancels the handlers still running."""
        await self.stop_accepting()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, _request: web.Request) -> web.FileResponse:
        # The portal has no inline scripts or styles, so a strict policy costs nothing.
        return web.FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:"},
        )

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        limits = self.ctx.config.limits
        socket = web.WebSocketResponse(
            protocols=("xmpp",),
            max_msg_size=limits.max_stanza_bytes + 1024,
            # How long the closing handshake waits for the client's close frame: the
            # stream's lingering close.
            timeout=LINGER_SECONDS,
        )
        await socket.prepare(request)
        if socket.ws_protocol != "xmpp":
            # RFC 7395 section 3.1: without the xmpp sub-protocol there is no XMPP session.
            await socket.close(code=1002, message=b"the xmpp sub-protocol is required")
            return socket
        peer = request.transport.get_extra_info("peername") if request.transport else None
        stream = ClientStream(
            self.ctx,
            WebSocketReader(socket),
            WebSocketWriter(socket, peer, request.transport),
            secure=self.ctx.config.web.consider_secure,
        )
        await stream.run()
        return socket
