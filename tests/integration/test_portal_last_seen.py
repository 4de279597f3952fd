"""The portal's last seen in Chromium, against a server whose clock the test moves: "Last seen
2 h ago" for a contact shown Not logged in, "Away since 11:05" from a contact's XEP-0319 idle
time, and Settings -> Presence -> "Show when I was last seen", which hides both ways."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from slixmpp.xmlstream import ET

from chorus_presence.core.clock import ManualClock
from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    link,
    presence_of,
    quiet_slixmpp,
    start_server,
    sync,
    visibility,
    write_config,
)
from tests.integration.harness.portal import open_portal, sign_in

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
IDLE = "{urn:xmpp:idle:1}idle"
# Monday 4 May 2026, 12:00 UTC.
START = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC).timestamp()

expect.set_options(timeout=10_000)


@pytest.fixture
async def clocked(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> AsyncIterator[tuple[Harness, ManualClock]]:
    quiet_slixmpp()
    clock = ManualClock(START)
    config = write_config(tmp_path, tls_files, web={"enabled": True, "port": 0})
    running = await start_server(config, tls_files[0], clock=clock)
    for name in ("alice", "bob", "carol"):
        await running.add_user(name)
    await link(running, "alice", "bob")
    await link(running, "alice", "carol")
    try:
        yield running, clock
    finally:
        await running.close()


async def local_time(page: Page, utc: str) -> str:
    """A UTC time as the page shows a time of day, in the browser's own zone."""
    return await page.evaluate(
        "(at) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })",
        utc,
    )


async def test_last_seen_and_away_since_and_the_switch(
    clocked: tuple[Harness, ManualClock], browser: Browser
) -> None:
    harness, clock = clocked
    # Bob is shown Away while not logged in, and logs out at 12:00.
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    await bob_in.get(presence_of(bob, "available", f"{BOB}/test"))
    await visibility(bob, **{"away-when-offline": "true"})
    bob.send_presence(ptype="unavailable")
    await sync(bob)
    bob.abort()
    await harness.ctx.background.drain()
    clock.advance(2 * 3600 + 60)
    # Carol is logged in, away since 11:05 as her client says.
    carol = await harness.login("carol")
    carol_in = Inbox(carol)
    presence = carol.make_presence(pshow="away")
    presence.append(ET.Element(IDLE, {"since": "2026-05-04T11:05:00Z"}))
    presence.send()
    await carol_in.expect(lambda p: str(p["from"]) == f"{CAROL}/test", "carol away")

    alice = await open_portal(browser, harness.server.web.port, "desktop")
    # The page's clock is the server's, so that "2 h ago" is the server's two hours.
    await alice.clock.set_fixed_time(dt.datetime.fromtimestamp(clock.now(), dt.UTC))
    await sign_in(alice, ALICE)
    bob_row = alice.locator(f".contact[data-jid='{BOB}']")
    carol_row = alice.locator(f".contact[data-jid='{CAROL}']")
    await expect(bob_row.locator(".contact-state")).to_have_text("Away")
    await expect(bob_row.locator(".contact-status")).to_have_text("Not logged in")
    await expect(bob_row.locator(".contact-detail")).to_have_text("Last seen 2 h ago")
    away_since = await local_time(alice, "2026-05-04T11:05:00Z")
    await expect(carol_row.locator(".contact-detail")).to_have_text(f"Away since {away_since}")

    await alice.goto(alice.url.split("#")[0] + "#/settings/presence")
    switch = alice.get_by_role("switch", name="Show when I was last seen")
    await expect(switch).to_be_checked()
    await switch.uncheck()
    await expect(alice.locator("#last-seen-result")).to_have_text(
        "Your last seen is hidden, and you see nobody's."
    )
    assert (await harness.ctx.repositories.settings.get("alice")).hide_last_seen is True
    await alice.goto(alice.url.split("#")[0] + "#/contacts")
    await expect(bob_row.locator(".contact-state")).to_have_text("Away")
    await expect(bob_row.locator(".contact-detail")).to_have_text("")
    await expect(carol_row.locator(".contact-detail")).to_have_text("")

    # After a reload the switch and the list say the same, read from the server.
    await alice.reload()
    await expect(bob_row.locator(".contact-state")).to_have_text("Away")
    await expect(bob_row.locator(".contact-detail")).to_have_text("")
    await expect(carol_row.locator(".contact-detail")).to_have_text("")
    await alice.goto(alice.url.split("#")[0] + "#/settings/presence")
    await expect(switch).not_to_be_checked()
    await switch.check()
    await expect(alice.locator("#last-seen-result")).to_have_text("Your last seen is shown.")
    assert (await harness.ctx.repositories.settings.get("alice")).hide_last_seen is False
    await alice.goto(alice.url.split("#")[0] + "#/contacts")
    await expect(bob_row.locator(".contact-detail")).to_have_text("Last seen 2 h ago")
    assert alice.errors == []  # type: ignore[attr-defined]


async def test_a_logout_seen_live_shows_the_servers_last_seen_only(
    clocked: tuple[Harness, ManualClock], browser: Browser
) -> None:
    """A contact seen going offline gets the server's last activity, so one who hides theirs
    shows none, though the page saw the moment."""
    harness, _clock = clocked
    clients = {}
    for name in ("bob", "carol"):
        client = await harness.login(name)
        inbox = Inbox(client)
        client.send_presence()
        await inbox.get(presence_of(client, "available", f"{name}@{DOMAIN}/test"))
        clients[name] = client
    hide = clients["carol"].make_iq_set()
    hide.append(ET.Element("{urn:chorus:presence:0}last-seen", {"show": "false"}))
    await hide.send()

    alice = await open_portal(browser, harness.server.web.port, "desktop")
    await sign_in(alice, ALICE)
    bob_row = alice.locator(f".contact[data-jid='{BOB}']")
    carol_row = alice.locator(f".contact[data-jid='{CAROL}']")
    await expect(bob_row.locator(".contact-state")).to_have_text("Available")
    await expect(carol_row.locator(".contact-state")).to_have_text("Available")
    for client in clients.values():
        client.send_presence(ptype="unavailable")
        await sync(client)
    await expect(bob_row.locator(".contact-state")).to_have_text("Offline")
    await expect(carol_row.locator(".contact-state")).to_have_text("Offline")
    await expect(bob_row.locator(".contact-detail")).to_have_text(re.compile("^Last seen "))
    await expect(carol_row.locator(".contact-detail")).to_have_text("")
    assert alice.errors == []  # type: ignore[attr-defined]
