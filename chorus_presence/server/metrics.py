"""Prometheus metrics of one server: sessions, stanzas in and out by kind, presence fan-out,
authentication failures and presence delivery latency; and their HTTP exposition.

Each server has its own registry, so several servers in one process (the tests) never clash.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from chorus_presence.server.context import ServerContext

log = logging.getLogger(__name__)

KINDS = ("message", "presence", "iq")
# The second byte of a serialised stanza tells its kind without parsing it.
_KIND_BY_BYTE = {ord("m"): "message", ord("p"): "presence", ord("i"): "iq"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge("chorus_sessions", "Bound client sessions", registry=self.registry)
        received = Counter(
            "chorus_stanzas_received",
            "Stanzas received from clients",
            ["kind"],
            registry=self.registry,
        )
        sent = Counter(
            "chorus_stanzas_sent", "Stanzas sent to clients", ["kind"], registry=self.registry
        )
        self.received = {kind: received.labels(kind) for kind in KINDS}
        self.sent = {kind: sent.labels(kind) for kind in KINDS}
        self.presence_deliveries = Counter(
            "chorus_presence_deliveries",
            "Presence stanzas delivered to contacts' resources",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "chorus_auth_failures", "Failed SASL authentications", registry=self.registry
        )
        self.presence_latency = Histogram(
            "chorus_presence_delivery_seconds",
            "Time from receiving a presence update to writing it to every recipient",
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
            registry=self.registry,
        )

    def stanza_sent(self, data: bytes) -> None:
        kind = _KIND_BY_BYTE.get(data[1]) if len(data) > 1 else None
        if kind is not None:
            self.sent[kind].inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsEndpoint:
    """`GET /metrics` on the configured local address, when `[metrics] enabled`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        config = self.ctx.config.metrics
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.host, config.port)
        await site.start()
        log.info("metrics on http://%s:%d/metrics", config.host, self.port)

    @property
    def port(self) -> int:
        assert self._runner is not None
        server = self._runner.addresses[0]
        return server[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, _request: web.Request) -> web.Response:
        self.ctx.metrics.sessions.set(len(self.ctx.sessions))
        return web.Response(
            body=self.ctx.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
