"""The HTTP listener (`[web]`): XMPP over WebSocket at /xmpp-websocket and the portal at /."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from chorus_presence.server.c2s import ClientStream, StreamContext
from chorus_presence.web.transport import WebSocketReader, WebSocketWriter

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PATH = "/xmpp-websocket"


class WebListener:
    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        config = self.ctx.config.web
        app = web.Application()
        app.router.add_get(PATH, self._websocket)
        app.router.add_get("/", self._index)
        app.router.add_static("/", STATIC, show_index=False)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, config.host, config.port).start()
        log.info("web portal on http://%s:%d/", config.host, self.port)

    @property
    def port(self) -> int:
        assert self._runner is not None
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
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
            protocols=("xmpp",), max_msg_size=limits.max_stanza_bytes + 1024
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
            WebSocketWriter(socket, peer),
            secure=self.ctx.config.web.consider_secure,
        )
        await stream.run()
        return socket
