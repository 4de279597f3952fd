"""The HTTP exposition of the server's metrics: `GET /metrics` on the configured local address,
when `[metrics] enabled`."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from chorus_presence.config import MetricsConfig
from chorus_presence.core.metrics import Metrics

log = logging.getLogger(__name__)


class MetricsEndpoint:
    def __init__(self, metrics: Metrics, config: MetricsConfig) -> None:
        self._metrics = metrics
        self._config = config
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._config.host, self._config.port)
        await site.start()
        log.info("metrics on http://%s:%d/metrics", self._config.host, self.port)

    @property
    def port(self) -> int:
        assert self._runner is not None
        server = self._runner.addresses[0]
        return int(server[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
