"""The portal's presence settings, exactly: the green number follows the count the server
pushes, without a reload, and a person who is no user here is refused with the server's
words, while rows older versions let in still move between the lists."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from chorus_presence.storage.rosters import RosterChanges, RosterItem
from tests.integration.harness import (
    DOMAIN,
    Harness,
    online,
    presence_of,
)
from tests.integration.harness.portal import portal

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
GHOST, PHANTOM = f"ghost@{DOMAIN}", f"phantom@{DOMAIN}"
WEB = pytest.mark.server_config(web={"enabled": True, "port": 0})

expect.set_options(timeout=10_000)


async def open_presence_settings(page: Page) -> None:
    await page.locator("#user-button").click()
    await page.locator("#user-menu").get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Presence", exact=True)).to_be_visible()


@WEB
async def test_the_green_number_follows_the_pushed_count(
    harness: Harness, browser: Browser
) -> None:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    bob, _ = await online(harness, "bob")
    carol, _ = await online(harness, "carol")

    bob.send_presence(pto=ALICE, ptype="subscribe")
    await expect(alice.locator("#user-badge")).to_have_text("1")
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await expect(alice.locator("#user-badge")).to_have_text("2")
    await expect(alice.locator("#user-badge")).to_have_attribute(
        "aria-label", "2 pending presence status requests"
    )
    await open_presence_settings(alice)
    await expect(alice.locator("#settings-badge")).to_have_text("2")
    await expect(alice.locator("#pending-count")).to_have_text("2")

    # Nothing but the pushed count tells the portal that a requester's account went.
    assert await harness.ctx.accounts.remove("carol")
    await expect(alice.locator("#pending-count")).to_have_text("1")
    await expect(alice.locator("#user-badge")).to_have_text("1")
    await expect(alice.locator("#pending-list .person")).to_have_count(1)
    await expect(alice.locator("#pending-list")).to_contain_text(BOB)
    assert await harness.ctx.accounts.remove("bob")
    await expect(alice.locator("#pending-count")).to_have_text("0")
    await expect(alice.locator("#user-badge")).to_be_hidden()
    await expect(alice.locator("#settings-badge")).to_be_hidden()
    assert await alice.title() == "Chorus Presence"
    assert alice.errors == []  # type: ignore[attr-defined]


@WEB
async def test_who_is_no_user_here_is_refused_in_the_servers_words(
    harness: Harness, browser: Browser
) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    # Rows an older version let in: a pre-approval and a block of accounts that never were.
    await harness.ctx.rosters.commit(
        RosterChanges(upserts=[("alice", RosterItem(PHANTOM, approved=True))])
    )
    await harness.ctx.visibility.presence_blocks.add("alice", GHOST)
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    await open_presence_settings(alice)
    someone = alice.get_by_label("Allow or block someone by their address")
    result = alice.locator("#exception-result")

    for typed, error in (
        (f"nosuch@{DOMAIN}", f"No such user nosuch@{DOMAIN}"),
        ("bob@@x", "'bob@@x' is not a valid JID"),
        (DOMAIN, f"{DOMAIN} is a domain, not a user"),
    ):
        await someone.fill(typed)
        await alice.get_by_role("button", name="Block", exact=True).click()
        await expect(result).to_have_text(f"Could not block {typed}: {error}")
        await expect(result).to_have_attribute("data-kind", "error")
    await expect(alice.locator("#blocked-count")).to_have_text("1")
    await expect(alice.locator("#allowed-count")).to_have_text("1")

    # A real user, who has not asked, is allowed in advance.
    await someone.fill(BOB)
    await alice.get_by_role("button", name="Allow", exact=True).click()
    await expect(result).to_have_text(f"Allowed {BOB} to see your presence status.")
    await expect(alice.locator("#allowed-count")).to_have_text("2")
    await expect(alice.locator("#allowed-list")).to_contain_text(BOB)
    await expect(someone).to_have_value("")
    bob, bob_in = await online(harness, "bob")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "subscribed", ALICE))

    # The old rows still move between the lists.
    await alice.get_by_role("button", name=f"Allow {GHOST}").click()
    await alice.get_by_role("button", name=f"Block {PHANTOM}").click()
    await expect(alice.locator("#blocked-list")).to_contain_text(PHANTOM)
    await expect(alice.locator("#allowed-list")).to_contain_text(GHOST)
    await expect(alice.locator("#allowed-count")).to_have_text("2")
    await expect(alice.locator("#blocked-count")).to_have_text("1")
    assert alice.errors == []  # type: ignore[attr-defined]
