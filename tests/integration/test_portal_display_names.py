"""Display names in the portal, in Chromium: contacts, pending requests and the presence
blocked list show each person's name with the address on a line beneath it; the name the user
gave a contact in the roster wins over the one the contact chose; and the user sets their own
name in Settings -> Profile, over vCard4 as any client would.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from chorus_presence.admin import rosters as admin_rosters
from chorus_presence.xmpp.jid import JID
from tests.integration.harness import DOMAIN, Harness, link
from tests.integration.harness.portal import SIZES, overflow, portal, screenshot

ALICE, BOB, CAROL, DAVE, ERIN = (
    f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave", "erin")
)
WEB = {"web": {"enabled": True, "port": 0}}
# As long as a name may be, in words too long for a phone's line.
LONG_NAME = "Bartholomew Montgomery-Fitzwilliam-Featherstonehaugh, Research"

expect.set_options(timeout=10_000)


async def beneath(row: Locator, upper: str, lower: str) -> bool:
    """Whether the row's `lower` starts on a line below the one its `upper` ends on, measured
    in one go: a list is drawn again as names arrive."""
    return bool(
        await row.evaluate(
            """(row, [upper, lower]) => {
              const top = row.querySelector(upper).getBoundingClientRect();
              const bottom = row.querySelector(lower).getBoundingClientRect();
              return bottom.top >= top.bottom - 1;
            }""",
            [upper, lower],
        )
    )


async def shows(page: Page, row: Locator, name: str, jid: str, names: str, jids: str) -> None:
    await expect(row.locator(names)).to_have_text(name)
    await expect(row.locator(jids)).to_have_text(jid)
    assert await beneath(row, names, jids)


@pytest.mark.server_config(**WEB)
@pytest.mark.parametrize("size", SIZES)
async def test_names_are_shown_with_the_address_beneath(
    harness: Harness, browser: Browser, size: str
) -> None:
    for user in ("alice", "bob", "carol", "dave", "erin"):
        await harness.add_user(user)
    names = harness.ctx.repositories.display_names
    for user, name in (
        ("bob", LONG_NAME),
        ("carol", "Carol Danvers"),
        ("dave", "Dave Chosen"),
        ("erin", "Erin Example"),
    ):
        await names.set(user, name)
    await link(harness, "alice", "bob")
    await link(harness, "alice", "dave")
    await admin_rosters.add(harness.ctx, "alice", DAVE, name="Dave at work")
    await harness.ctx.subscriptions.exchange(
        JID("carol", DOMAIN), JID("alice", DOMAIN), "subscribe"
    )
    await harness.ctx.visibility.block("alice", ERIN)

    page = await portal(browser, harness.server.web.port, size, ALICE)
    bob = page.locator(f".contact[data-jid='{BOB}']")
    await shows(page, bob, LONG_NAME, BOB, ".contact-name", ".contact-jid")
    dave = page.locator(f".contact[data-jid='{DAVE}']")
    await shows(page, dave, "Dave at work", DAVE, ".contact-name", ".contact-jid")
    await screenshot(page, "display-names-contacts")
    assert await overflow(page) == []

    await page.locator("#user-button").click()
    await page.locator("#user-menu").get_by_role("link", name="Settings").click()
    pending = page.locator(f"#pending-list .person[data-jid='{CAROL}']")
    await shows(page, pending, "Carol Danvers", CAROL, ".person-name", ".person-jid")
    hidden = page.locator(f"#blocked-list .person[data-jid='{ERIN}']")
    await shows(page, hidden, "Erin Example", ERIN, ".person-name", ".person-jid")
    await screenshot(page, "display-names-lists")
    assert await overflow(page) == []

    settings = page.get_by_role("navigation", name="Settings")
    await settings.get_by_role("link", name="Profile").click()
    await page.get_by_label("Your name").fill(f"  {LONG_NAME} ")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#own-name-result")).to_have_text("Saved.")
    assert await names.get("alice") == LONG_NAME
    await expect(page.locator("#user-name")).to_have_text(LONG_NAME)
    await screenshot(page, "display-names-profile")
    assert await overflow(page) == []
    await page.get_by_label("Your name").fill("")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#own-name-result")).to_have_text("Saved: your address is shown.")
    assert await names.get("alice") is None
    await expect(page.locator("#user-name")).to_have_text("alice")
    assert page.errors == []  # type: ignore[attr-defined]
