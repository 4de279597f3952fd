"""Prometheus metrics of one server: sessions, stanzas in and out by kind, presence fan-out,
accounts created, authentication failures and presence delivery latency.

Each server has its own registry, so several servers in one process (the tests) never clash.
Stanzas received and accounts created are counted by handlers of the bus's events, the session
gauge is read from the session registry, and the rest is counted by the code that does the
work, which is handed this object.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import StanzaEvent

KINDS = ("message", "presence", "iq")
# The second byte of a serialised stanza tells its kind without parsing it.
_KIND_BY_BYTE = {ord("m"): "message", ord("p"): "presence", ord("i"): "iq"}
# Before every filter, so refused stanzas are counted too.
COUNTING_PRIORITY = 1000


class Metrics:
    def __init__(self, bound_sessions: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge("chorus_sessions", "Bound client sessions", registry=self.registry)
        # Read from the session registry at each scrape, so the gauge cannot drift from it.
        self.sessions.set_function(bound_sessions)
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
        self.accounts_created = Counter(
            "chorus_accounts_created", "Accounts created", registry=self.registry
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

    def subscribe(self, bus: Bus) -> None:
        for kind, topic in (
            ("message", topics.MESSAGE_OUT),
            ("presence", topics.PRESENCE_OUT),
            ("iq", topics.IQ_OUT),
        ):
            bus.on(topic, self._counter(kind), priority=COUNTING_PRIORITY)
        bus.on(topics.ACCOUNT_CREATED, lambda _event: self.accounts_created.inc())

    def _counter(self, kind: str) -> Callable[[StanzaEvent], None]:
        counter = self.received[kind]

        def count(_event: StanzaEvent) -> None:
            counter.inc()

        return count

    def stanza_sent(self, data: bytes) -> None:
        kind = _KIND_BY_BYTE.get(data[1]) if len(data) > 1 else None
        if kind is not None:
            self.sent[kind].inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
