"""The portal's "Clear after" in Chromium, against a server whose clock the test moves: the
menu's choices, a state set to clear itself as a stock client sees it, "until" shown in the
header and in the contact list, and both cleared when the time comes."""

from __future__ import annotations

import datetime as dt
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
    quiet_slixmpp,
    start_server,
    write_config,
)
from tests.integration.harness.portal import portal

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
STATE = "{urn:chorus:presence:0}state"
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
    for name in ("alice", "bob"):
        await running.add_user(name)
    await link(running, "alice", "bob")
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


async def test_the_status_menu_clears_after_and_shows_until(
    clocked: tuple[Harness, ManualClock], browser: Browser
) -> None:
    harness, clock = clocked
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    # The page tells "today" by its own clock: the server's day, for the test.
    await alice.clock.set_fixed_time(dt.datetime.fromtimestamp(START + 60, dt.UTC))
    row = alice.locator(f".contact[data-jid='{BOB}']")
    await expect(row.locator(".contact-state")).to_have_text("Available")

    await alice.locator("#presence-button").click()
    clear = alice.get_by_label("Clear after")
    assert await clear.locator("option").all_text_contents() == [
        "Don't clear",
        "30 minutes",
        "1 hour",
        "4 hours",
        "Today",
        "This week",
    ]
    await expect(clear).to_have_value("")
    await alice.get_by_role("dialog").get_by_label("Busy", exact=True).check()
    await alice.get_by_label("Custom status text").fill("Interviews")
    await clear.select_option(label="30 minutes")
    await alice.get_by_role("button", name="Set status").click()

    seen = await bob_in.expect(
        lambda p: p["from"].bare == ALICE and p.xml.findtext(STATE) == "busy",
        "busy from the portal",
    )
    assert seen.xml.find(STATE).get("until") == "2026-05-04T12:30:00Z"
    assert seen["status"] == "Interviews"
    ends = await local_time(alice, "2026-05-04T12:30:00Z")
    await expect(alice.locator("#presence-label")).to_have_text("Busy")
    await expect(alice.locator("#presence-text")).to_have_text(f"Interviews · until {ends}")

    presence = bob.make_presence(pstatus="Calls")
    state = ET.Element(STATE, {"for": "PT1H"})
    state.text = "in-meeting"
    presence.append(state)
    presence.send()
    meeting_ends = await local_time(alice, "2026-05-04T13:00:00Z")
    await expect(row.locator(".contact-state")).to_have_text(f"In Meeting until {meeting_ends}")

    clock.advance(1800)
    await expect(alice.locator("#presence-label")).to_have_text("Available")
    await expect(alice.locator("#presence-text")).to_have_text("")
    await bob_in.expect(
        lambda p: (
            p["from"].bare == ALICE
            and p.xml.findtext(STATE) == "available"
            and p.xml.find(STATE).get("until") is None
        ),
        "alice reverted",
    )
    clock.advance(1800)
    await expect(row.locator(".contact-state")).to_have_text("Available")
    await expect(row.locator(".contact-status")).to_have_text("")
    assert alice.errors == []  # type: ignore[attr-defined]


async def test_the_time_zone_is_set_in_settings_and_today_ends_there(
    clocked: tuple[Harness, ManualClock], browser: Browser
) -> None:
    harness, _clock = clocked
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    await alice.goto(alice.url.split("#")[0] + "#/settings/presence")
    zone = alice.get_by_label("Time zone")
    await expect(zone).to_have_value("UTC")
    await zone.select_option("Asia/Tokyo")
    await alice.get_by_role("button", name="Set time zone").click()
    await expect(alice.locator("#time-zone-result")).to_have_text("Saved.")
    settings = await harness.ctx.repositories.settings.get("alice")
    assert settings.time_zone == "Asia/Tokyo"

    await alice.locator("#presence-button").click()
    await alice.get_by_role("dialog").get_by_label("Away", exact=True).check()
    await alice.get_by_label("Clear after").select_option(label="Today")
    await alice.get_by_role("button", name="Set status").click()
    seen = await bob_in.expect(
        lambda p: p["from"].bare == ALICE and p.xml.findtext(STATE) == "away",
        "away for the day in Tokyo",
    )
    # Midnight in Tokyo (UTC+9) after 12:00 UTC on 4 May.
    assert seen.xml.find(STATE).get("until") == "2026-05-04T15:00:00Z"
    assert alice.errors == []  # type: ignore[attr-defined]
