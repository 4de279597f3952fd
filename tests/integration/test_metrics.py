"""The Prometheus endpoint: real counters moved by real clients, read over HTTP."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tests.integration.harness import DOMAIN, PASSWORD, TIMEOUT, Harness, Inbox, link, presence_of


def value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in the exposition"
    return float(match[1])


@pytest.mark.server_config(metrics={"enabled": True, "port": 0})
async def test_metrics_follow_real_traffic(harness: Harness) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    alice = await harness.login("alice")
    alice.send_presence()
    await bob_in.get(presence_of(bob, "available", f"alice@{DOMAIN}/test"))
    # One stream with a wrong password: every refusal on it (the wrong password, then any
    # retry the client makes and the throttle refuses) is one failure the metric must count.
    wrong = harness.make_client("alice", "wrong")
    refusals: list[object] = []
    wrong.add_event_handler("failed_auth", refusals.append)
    ended = asyncio.get_running_loop().create_future()
    wrong.add_event_handler("disconnected", lambda _event: ended.done() or ended.set_result(None))
    assert await harness.connect(wrong) == "failed_auth"
    await asyncio.wait_for(ended, TIMEOUT)

    url = f"http://127.0.0.1:{harness.server.metrics_endpoint.port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        text = await response.text()
    assert value(text, "chorus_sessions") == 2
    assert value(text, 'chorus_stanzas_received_total{kind="presence"}') >= 2
    assert value(text, 'chorus_stanzas_sent_total{kind="presence"}') >= 2
    assert value(text, "chorus_presence_deliveries_total") >= 2
    assert value(text, "chorus_auth_failures_total") == len(refusals)
    assert value(text, "chorus_presence_delivery_seconds_count") >= 2
    assert PASSWORD not in text
