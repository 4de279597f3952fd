"""The portal's quiet hours editor in Chromium, at a desk and on a phone, against a server whose
clock the test moves: adding, editing and removing slots, the server's refusal shown, the
schedule stored as the server reads it, shown again after a reload, and applied at its
boundary; the screen fits and axe-core finds nothing serious."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from chorus_presence.core.clock import ManualClock
from chorus_presence.services.quiet_hours import format_slot
from tests.integration.harness import Harness, quiet_slixmpp, start_server, write_config
from tests.integration.harness.portal import axe_violations, check_screen, portal, screenshot

ALICE = "alice@chorus.test"
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
    await running.add_user("alice")
    try:
        yield running, clock
    finally:
        await running.close()


async def stored(harness: Harness) -> list[str]:
    return [format_slot(slot) for slot in harness.ctx.quiet_hours.schedule("alice")]


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_quiet_hours_are_edited_in_settings_and_apply(
    clocked: tuple[Harness, ManualClock], browser: Browser, size: str
) -> None:
    harness, clock = clocked
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    await alice.goto(alice.url.split("#")[0] + "#/settings/presence")
    await expect(alice.locator("#quiet-hours-empty")).to_have_text("No quiet hours.")

    add = alice.get_by_role("button", name="Add a slot")
    await add.click()
    await expect(alice.get_by_label("Days, slot 1")).to_have_value("mon-fri")
    await expect(alice.get_by_label("From, slot 1")).to_have_value("18:00")
    await expect(alice.get_by_label("To, slot 1")).to_have_value("08:00")
    await expect(alice.get_by_label("State, slot 1")).to_have_value("dnd")
    await alice.get_by_label("Text, slot 1").fill("Off work")
    await add.click()
    await alice.get_by_label("Days, slot 2").select_option(label="Weekends")
    await alice.get_by_label("From, slot 2").fill("00:00")
    await alice.get_by_label("To, slot 2").fill("00:00")
    await alice.get_by_label("Text, slot 2").fill("Off work")
    # A third slot that overlaps Friday evening with another state: the server says which.
    await add.click()
    await alice.get_by_label("Days, slot 3").select_option(label="Friday")
    await alice.get_by_label("From, slot 3").fill("20:00")
    await alice.get_by_label("To, slot 3").fill("23:00")
    await alice.get_by_label("State, slot 3").select_option(label="Away")
    await check_screen(alice, "quiet hours, three slots")
    assert await axe_violations(alice) == []
    await screenshot(alice, "quiet-hours")

    save = alice.get_by_role("button", name="Set quiet hours")
    await save.click()
    result = alice.locator("#quiet-hours-result")
    await expect(result).to_have_text(
        "Not saved: Slot 3 (fri 20:00-23:00 away) overlaps slot 1"
        " (mon-fri 18:00-08:00 dnd Off work) with another state or text"
    )
    assert await stored(harness) == []
    await alice.get_by_role("button", name="Remove slot 3").click()
    await expect(alice.get_by_label("Days, slot 3")).to_have_count(0)
    await save.click()
    await expect(result).to_have_text("Quiet hours saved.")
    assert await stored(harness) == [
        "mon-fri 18:00-08:00 dnd Off work",
        "sat-sun 00:00-24:00 dnd Off work",
    ]

    clock.advance(6 * 3600)
    await expect(alice.locator("#presence-label")).to_have_text("Do Not Disturb")
    await expect(alice.locator("#presence-text")).to_have_text("Off work")

    await alice.reload()
    await alice.goto(alice.url.split("#")[0] + "#/settings/presence")
    await expect(alice.get_by_label("Days, slot 2")).to_have_value("sat-sun")
    await expect(alice.get_by_label("To, slot 2")).to_have_value("00:00")
    await expect(alice.get_by_label("Text, slot 1")).to_have_value("Off work")
    for row in (2, 1):
        await alice.get_by_role("button", name=f"Remove slot {row}").click()
    await expect(alice.locator("#quiet-hours-empty")).to_be_visible()
    await save.click()
    await expect(result).to_have_text("Quiet hours saved: none.")
    assert await stored(harness) == []
    # Ending the schedule inside its slot ends the slot too.
    await expect(alice.locator("#presence-label")).to_have_text("Available")
    assert alice.errors == []  # type: ignore[attr-defined]
