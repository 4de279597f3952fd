"""The web portal end to end: people sign in through headless Chromium and use every screen,
over the same XMPP-over-WebSocket interfaces stock clients and the CLI use.

Set PORTAL_SCREENSHOTS to a directory to keep a screenshot of each main screen there.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    link,
    presence_of,
    roster_of,
)
from tests.integration.harness.portal import portal, screenshot

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
PBX = f"pbx@{DOMAIN}"
WEB = {"web": {"enabled": True, "port": 0}}
EVERYONE = "Everyone can see my presence status (except explicitly blocked users)"
WAIT_MS = 10_000

expect.set_options(timeout=WAIT_MS)


def contact(page: Page, jid: str):
    return page.locator(f".contact[data-jid='{jid}']")


async def add_contact(page: Page, jid: str) -> None:
    await page.get_by_label("Add a contact").fill(jid)
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.locator("#add-contact-result")).to_have_text(
        f"Asked {jid} to share their presence with you."
    )


async def open_settings(page: Page, section: str = "Presence") -> None:
    """As the guide says: click your name, then Settings, then the section."""
    await page.locator("#user-button").click()
    await page.locator("#user-menu").get_by_role("link", name="Settings").click()
    await page.get_by_role("navigation", name="Settings").get_by_role("link", name=section).click()
    await expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()


async def open_contacts(page: Page) -> None:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    await expect(page.locator("#contacts-view")).to_be_visible()


async def accept_request(page: Page, requester: str, shot: str | None = None) -> None:
    """Accept from Settings -> Presence, checking the green number on the way."""
    await expect(page.locator("#user-badge")).to_have_text("1")
    await open_settings(page)
    await expect(page.locator("#settings-badge")).to_have_text("1")
    await expect(page.locator("#pending-count")).to_have_text("1")
    await expect(page.locator("#pending-list .person")).to_have_count(1)
    if shot:
        await screenshot(page, shot)
    await page.get_by_role("button", name=f"Accept {requester}").click()
    await expect(page.locator("#pending-count")).to_have_text("0")
    await expect(page.locator("#user-badge")).to_be_hidden()
    await expect(page.locator("#allowed-list")).to_contain_text(requester)
    await open_contacts(page)


async def set_presence(page: Page, state: str, text: str = "") -> None:
    await page.locator("#presence-button").click()
    await page.get_by_role("dialog").get_by_label(state, exact=True).check()
    await page.get_by_label("Custom status text").fill(text)
    await page.get_by_role("button", name="Set status").click()
    await expect(page.locator("#presence-label")).to_have_text(state)


async def send_chat(page: Page, jid: str, text: str) -> None:
    name = jid.split("@")[0]
    await contact(page, jid).get_by_role("button", name=f"Chat with {name}").click()
    box = page.get_by_label(f"Message to {name}")
    await box.fill(text)
    await box.press("Enter")
    await expect(page.get_by_role("log", name=f"Conversation with {name}")).to_contain_text(text)


async def sign_out(page: Page) -> None:
    await page.locator("#user-button").click()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in to Chorus Presence")).to_be_visible()


@pytest.mark.server_config(**WEB)
async def test_two_portal_users_add_each_other_chat_and_block(
    harness: Harness, browser: Browser
) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    bob = await portal(browser, harness.server.web.port, "desktop", BOB)

    # Alice asks to see Bob's presence; Bob accepts from his pending list.
    await add_contact(alice, BOB)
    await expect(contact(alice, BOB).locator(".contact-note")).to_have_text(
        "Waiting for them to accept your request"
    )
    await accept_request(bob, ALICE, shot="settings-presence-pending")
    await expect(contact(alice, BOB).locator(".contact-state")).to_have_text("Available")
    await expect(contact(alice, BOB).locator(".contact-note")).to_have_text("")

    # And the other way round.
    await add_contact(bob, ALICE)
    await accept_request(alice, BOB)
    await expect(contact(bob, ALICE).locator(".contact-state")).to_have_text("Available")

    # A state with custom text, seen live by the contact.
    await set_presence(alice, "Busy", "Quarterly review")
    await expect(alice.locator("#presence-text")).to_have_text("Quarterly review")
    row = contact(bob, ALICE)
    await expect(row.locator(".contact-state")).to_have_text("Busy")
    await expect(row.locator(".contact-status")).to_have_text("Quarterly review")
    await expect(bob.locator("#live")).to_have_text("alice is now Busy: Quarterly review")
    await screenshot(bob, "contacts")

    # Chat both ways: the receiving side opens a panel for the sender.
    await send_chat(alice, BOB, "Lunch at noon?")
    bob_log = bob.get_by_role("log", name="Conversation with alice")
    await expect(bob_log).to_contain_text("Lunch at noon?")
    await expect(bob.get_by_role("tab", name="alice")).to_have_attribute("aria-selected", "true")
    reply = bob.get_by_label("Message to alice")
    await reply.fill("Sounds good")
    await bob.get_by_role("button", name="Send").click()
    await expect(alice.get_by_role("log", name="Conversation with bob")).to_contain_text(
        "Sounds good"
    )
    await screenshot(alice, "chat")

    # Bob blocks Alice: she moves between his lists and his presence leaves her view.
    await open_settings(bob)
    await expect(bob.locator("#allowed-count")).to_have_text("1")
    await expect(bob.locator("#blocked-count")).to_have_text("0")
    await bob.get_by_role("button", name=f"Block {ALICE}").click()
    await expect(bob.locator("#allowed-count")).to_have_text("0")
    await expect(bob.locator("#blocked-count")).to_have_text("1")
    await expect(bob.locator("#blocked-list")).to_contain_text(ALICE)
    await expect(contact(alice, BOB).locator(".contact-state")).to_have_text("Presence not shared")
    await expect(contact(alice, BOB).locator(".contact-note")).to_have_text(
        "Not sharing their presence with you"
    )
    await screenshot(bob, "settings-presence")

    # Allowing her again moves her back, and she sees him at once.
    await bob.get_by_role("button", name=f"Allow {ALICE}").click()
    await expect(bob.locator("#allowed-count")).to_have_text("1")
    await expect(bob.locator("#blocked-count")).to_have_text("0")
    await expect(contact(alice, BOB).locator(".contact-state")).to_have_text("Available")

    # Once Bob has signed out, a message to him comes back as not delivered.
    await sign_out(bob)
    await expect(contact(alice, BOB).locator(".contact-state")).to_have_text("Offline")
    alice_log = alice.get_by_role("log", name="Conversation with bob")
    box = alice.get_by_label("Message to bob")
    await box.fill("Are you there?")
    await box.press("Enter")
    await expect(alice_log.locator(".message.failed .message-error")).to_have_text(
        "Not delivered: bob is not logged in."
    )
    assert alice.errors == [] and bob.errors == []  # type: ignore[attr-defined]


@pytest.mark.server_config(**WEB)
async def test_stock_client_and_portal_see_each_other(harness: Harness, browser: Browser) -> None:
    for name in ("alice", "carol"):
        await harness.add_user(name)
    await link(harness, "alice", "carol")
    carol = await harness.login("carol")
    carol_in = Inbox(carol)
    carol.send_presence(pshow="away", pstatus="Out for lunch")

    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    row = contact(alice, CAROL)
    await expect(row.locator(".contact-state")).to_have_text("Away")
    await expect(row.locator(".contact-status")).to_have_text("Out for lunch")
    portal_jid = await alice.evaluate("document.querySelector('#user-jid').textContent")
    assert portal_jid == ALICE

    await set_presence(alice, "In Meeting", "Design review")
    seen = await carol_in.get(
        # slixmpp reports an available presence's <show> as its type.
        lambda p: (
            p["from"].bare == ALICE
            and p.xml.findtext("{urn:chorus:presence:0}state") == "in-meeting"
        )
    )
    assert seen["show"] == "dnd"
    assert seen["status"] == "Design review"

    carol.send_presence(pshow="dnd")
    await expect(row.locator(".contact-state")).to_have_text("Do Not Disturb")
    await expect(row.locator(".contact-status")).to_have_text("")

    # A message from the stock client opens a chat in the portal, and the answer reaches it.
    carol.send_message(mto=ALICE, mbody="Got a minute?", mtype="chat")
    await expect(alice.get_by_role("log", name="Conversation with carol")).to_contain_text(
        "Got a minute?"
    )
    box = alice.get_by_label("Message to carol")
    await box.fill("After the review")
    await box.press("Enter")
    answer = await carol_in.get(lambda s: s.name == "message" and s["body"] == "After the review")
    assert answer["from"].bare == ALICE

    # Removing the contact cancels the subscriptions both ways (RFC 6121 section 2.5).
    await row.get_by_role("button", name="Remove carol").click()
    await alice.get_by_role("button", name="Confirm removing carol").click()
    await expect(row).to_have_count(0)
    await expect(alice.locator("#contacts-empty")).to_be_visible()
    await carol_in.get(presence_of(carol, "unsubscribed", ALICE))
    await carol_in.get(presence_of(carol, "unavailable", ALICE))
    assert (await roster_of(carol))[ALICE]["subscription"] == "none"


@pytest.mark.server_config(**WEB)
async def test_presence_settings_are_the_servers(harness: Harness, browser: Browser) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    await open_settings(alice)
    policy = alice.get_by_label(EVERYONE)
    automation = alice.get_by_label("Show me as Away when I am not logged in")
    ask = alice.get_by_label("Ask me each time someone requests to see my presence status")
    await expect(ask).to_be_checked()
    await expect(automation).not_to_be_checked()
    await policy.check()
    await automation.check()
    await alice.get_by_role("button", name="Save").click()
    await expect(alice.locator("#visibility-result")).to_have_text("Saved.")
    overview = await harness.ctx.visibility.overview("alice")
    assert (overview.policy, overview.away_when_offline) == ("everyone", True)

    # With "everyone", a request is approved by the server, and the list follows live.
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    await expect(alice.locator("#allowed-count")).to_have_text("1")
    await expect(alice.locator("#allowed-list")).to_contain_text(BOB)
    await expect(alice.locator("#pending-count")).to_have_text("0")

    # Presence automation: signing out shows Alice as away, "Not logged in".
    await sign_out(alice)
    away = await bob_in.get(
        lambda p: (
            p["from"].bare == ALICE and p.xml.findtext("{urn:chorus:presence:0}state") == "offline"
        )
    )
    assert (away["show"], away["status"]) == ("away", "Not logged in")

    # The settings survive a new sign-in, as the server holds them.
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    await open_settings(alice)
    await expect(alice.get_by_label(EVERYONE)).to_be_checked()
    await expect(alice.get_by_label("Show me as Away when I am not logged in")).to_be_checked()


@pytest.mark.server_config(top_level={"admins": [PBX]}, **WEB)
async def test_devices_saved_in_the_portal_decide_the_route(
    harness: Harness, browser: Browser
) -> None:
    for name in ("alice", "pbx"):
        await harness.add_user(name)
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    await open_settings(alice, "Devices")
    devices = alice.locator("#settings-devices")
    await expect(devices.locator("#devices-empty")).to_be_visible()
    for name in ("Desk phone", "Voicemail", "Mobile"):
        await devices.get_by_label("Name", exact=True).fill(name)
        await devices.get_by_label("Kind", exact=True).select_option(label=name)
        await alice.get_by_role("button", name="Add device").click()
        await expect(alice.locator(f"#device-rows tr[data-device='{name}']")).to_be_visible()
    await devices.get_by_label("Default device").select_option("Desk phone")
    await devices.get_by_label(
        "I want my presence to determine how I receive calls from other people"
    ).check()
    await devices.get_by_label("Busy", exact=True).select_option("Voicemail")
    await devices.get_by_label("Not logged in", exact=True).select_option("Mobile")
    await alice.get_by_role("button", name="Save").click()
    await expect(alice.locator("#devices-result")).to_have_text("Saved.")
    await expect(alice.locator("#route-now")).to_have_text(
        "Calls to you ring Desk phone right now."
    )
    await screenshot(alice, "settings-devices")

    config = await harness.ctx.call_routing.config("alice")
    assert config.enabled is True
    assert config.default_device == "Desk phone"
    assert [(d.name, d.kind) for d in config.devices] == [
        ("Desk phone", "desk-phone"),
        ("Voicemail", "voicemail"),
        ("Mobile", "mobile"),
    ]
    assert config.mapping == {"busy": "Voicemail", "offline": "Mobile"}

    # A PBX asking over XMPP gets what the portal set, following Alice's presence.
    pbx = harness.make_client("pbx")
    pbx.register_plugin("chorus", module="chorus_presence.client.plugin")
    assert await harness.connect(pbx) == "session_start"
    route = await pbx.plugin["chorus"].route(ALICE)
    assert (route.state, route.device.name) == ("available", "Desk phone")
    await set_presence(alice, "Busy")
    await expect(alice.locator("#route-now")).to_have_text("Calls to you ring Voicemail right now.")
    route = await pbx.plugin["chorus"].route(ALICE)
    assert (route.state, route.device.name) == ("busy", "Voicemail")

    # Removing a device also drops what pointed at it; the page shows what the server kept.
    await alice.get_by_role("button", name="Remove device Mobile").click()
    await expect(alice.locator("#devices-result")).to_have_text("Unsaved changes.")
    await alice.get_by_role("button", name="Save").click()
    await expect(alice.locator("#devices-result")).to_have_text("Saved.")
    # A reload stays signed in, and shows what the server kept.
    await alice.reload()
    await expect(alice.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
    await expect(alice.locator("#device-rows tr")).to_have_count(2)
    await expect(devices.get_by_label("Busy", exact=True)).to_have_value("Voicemail")
    await expect(devices.get_by_label("Not logged in", exact=True)).to_have_value("")

    await sign_out(alice)
    route = await harness.ctx.call_routing.route("alice")
    assert (route.state, route.device.name) == ("offline", "Desk phone")
