"""The portal's priority list in Chromium: Settings -> Presence shows the people who reach the
user in Do Not Disturb with their count, adds someone by address (refused with the server's
words when no such user exists), removes them, and what it changes is the server's list, the
one that decides which messages arrive silently."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.integration.harness import DOMAIN, Harness, online
from tests.integration.harness.portal import portal

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
WEB = pytest.mark.server_config(web={"enabled": True, "port": 0})

expect.set_options(timeout=10_000)


async def open_presence_settings(page: Page) -> None:
    await page.locator("#user-button").click()
    await page.locator("#user-menu").get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Presence", exact=True)).to_be_visible()


@WEB
@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_the_priority_list_adds_and_removes(
    harness: Harness, browser: Browser, size: str
) -> None:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    await harness.ctx.priority_access.add("alice", CAROL)
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    await open_presence_settings(alice)
    section = alice.locator("#priority-section")
    await expect(section.locator("summary")).to_have_text(
        "People who reach me in Do Not Disturb (1)"
    )
    await expect(section.locator(".person")).to_have_count(1)
    await expect(section.locator(".person")).to_contain_text(CAROL)

    address = alice.get_by_label("Add someone by their address")
    await address.fill(f"nobody@{DOMAIN}")
    await section.get_by_role("button", name="Add to the list").click()
    await expect(alice.locator("#priority-result")).to_have_text(
        f"Could not add nobody@{DOMAIN}: No such user nobody@{DOMAIN}"
    )
    await address.fill(BOB)
    await address.press("Enter")
    await expect(alice.locator("#priority-result")).to_have_text(
        f"{BOB} reaches you in Do Not Disturb."
    )
    await expect(alice.locator("#priority-count")).to_have_text("2")
    await expect(address).to_have_value("")
    assert await harness.ctx.priority_access.contacts("alice") == [BOB, CAROL]

    await section.get_by_role("button", name=f"Remove {CAROL}").click()
    await expect(alice.locator("#priority-result")).to_have_text(
        f"{CAROL} no longer reaches you in Do Not Disturb."
    )
    await expect(alice.locator("#priority-count")).to_have_text("1")
    await expect(section.locator(".person")).to_have_count(1)
    assert await harness.ctx.priority_access.contacts("alice") == [BOB]

    # The list the page keeps is the one the server applies: in DND, Bob alerts, Carol not.
    watcher, watcher_in = await online(harness, "alice", "phone")
    bob, _ = await online(harness, "bob")
    carol, _ = await online(harness, "carol")
    watcher.send_presence(pshow="dnd")
    await watcher_in.get(lambda s: s.name == "presence" and s["show"] == "dnd")
    bob.send_message(mto=f"{ALICE}/phone", mbody="urgent", mtype="chat")
    carol.send_message(mto=f"{ALICE}/phone", mbody="later", mtype="chat")
    silent = "{urn:chorus:dnd:0}no-alert"
    urgent = await watcher_in.get(lambda s: s.name == "message" and s["body"] == "urgent")
    later = await watcher_in.get(lambda s: s.name == "message" and s["body"] == "later")
    assert urgent.xml.find(silent) is None
    assert later.xml.find(silent) is not None
