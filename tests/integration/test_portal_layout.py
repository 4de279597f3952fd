"""The portal's layout at a desk (1366x860) and on a phone (390x844): every screen fits the
window with the longest names and texts, menus open inside it, a phone shows one pane at a time
with a way back, and the contact list is one a company can use: groups, a search, the available
first, an honest online count, since when and when last seen, full status texts, who does not
share their presence apart, and the two block lists told apart.

Set PORTAL_SCREENSHOTS to a directory to keep a screenshot of each screen there.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.integration.harness import Harness, online, presence_of
from tests.integration.harness.portal import (
    LONG_DEVICE,
    LONG_GROUP,
    LONG_MESSAGE,
    LONG_NAME,
    LONG_STATUS,
    MEETING,
    check_screen,
    company,
    jid,
    menus_outside,
    open_portal,
    phone,
    portal,
    screenshot,
    sign_in,
)

ALICE, BOB = jid("alice"), jid("bob")
WEB = pytest.mark.server_config(web={"enabled": True, "port": 0})
SIZES = pytest.mark.parametrize("size", ["desktop", "phone"])
LAST_SEEN = re.compile(r"^Last seen (just now|\d+ min ago|\d+ h ago|yesterday at .+|on .+)$")

expect.set_options(timeout=10_000)


def row(page: Page, who: str, section: str | None = None):
    """A contact's row; `section` picks one group when they are in several."""
    scope = page.locator(f".contact-group[data-group='{section}']") if section else page
    return scope.locator(f".contact[data-jid='{jid(who)}']")


async def open_settings(page: Page, section: str = "Presence") -> None:
    await page.locator("#user-button").click()
    await page.locator("#user-menu").get_by_role("link", name="Settings").click()
    await page.get_by_role("navigation", name="Settings").get_by_role("link", name=section).click()
    await expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()


async def open_chat(page: Page, who: str) -> None:
    await row(page, who).first.get_by_role("button", name="Chat with").click()
    await expect(page.get_by_label(f"Message to {who}")).to_be_visible()


async def back_to_contacts(page: Page) -> None:
    if phone(page):
        # A button in the chats, a link in the settings.
        await page.locator("#chat-back:visible, .back-link:visible").click()
    else:
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
        )
    await expect(page.locator("#contact-search")).to_be_visible()


@WEB
@SIZES
async def test_every_screen_fits_the_window(harness: Harness, browser: Browser, size: str) -> None:
    people = await company(harness)
    alice = await open_portal(browser, harness.server.web.port, size)
    await check_screen(alice, "sign-in")
    await screenshot(alice, "sign-in")
    await sign_in(alice, ALICE)
    await expect(row(alice, LONG_NAME).locator(".contact-status")).to_have_text(MEETING)
    await expect(row(alice, "carol").first.locator(".contact-status")).to_have_text(LONG_STATUS)
    await check_screen(alice, "contacts")
    await screenshot(alice, "contacts")

    await alice.locator("#presence-button").click()
    await expect(alice.get_by_role("dialog", name="Set your presence status")).to_be_visible()
    await check_screen(alice, "presence menu")
    await screenshot(alice, "presence-menu")
    await alice.keyboard.press("Escape")
    await alice.locator("#user-button").click()
    await expect(alice.locator("#user-menu")).to_be_visible()
    await check_screen(alice, "user menu")
    await alice.keyboard.press("Escape")

    await open_chat(alice, LONG_NAME)
    box = alice.get_by_label(f"Message to {LONG_NAME}")
    await box.fill(LONG_MESSAGE)
    await box.press("Enter")
    people.clients[LONG_NAME].send_message(mto=ALICE, mbody=LONG_STATUS, mtype="chat")
    log = alice.get_by_role("log", name=f"Conversation with {LONG_NAME}")
    await expect(log).to_contain_text(LONG_STATUS)
    if not phone(alice):
        # A second chat, in a tab beside the first.
        await open_chat(alice, "bob")
        await alice.get_by_role("tab", name=LONG_NAME).click()
    await check_screen(alice, "chat")
    await screenshot(alice, "chat")
    if phone(alice):
        await back_to_contacts(alice)
        await open_chat(alice, "bob")
        await check_screen(alice, "second chat")

    await open_settings(alice)
    await expect(alice.locator("#pending-list")).to_contain_text(LONG_STATUS)
    await expect(alice.locator("#blocklist")).to_contain_text(jid("mallory"))
    await check_screen(alice, "settings, presence")
    await screenshot(alice, "settings-presence")

    await open_settings(alice, "Devices")
    await expect(alice.locator("#device-rows")).to_contain_text(LONG_DEVICE)
    await alice.get_by_label("Name", exact=True).fill("Mobile-" + "m" * 57)
    await alice.get_by_role("button", name="Add device").click()
    await expect(alice.locator("#device-rows tr")).to_have_count(3)
    await check_screen(alice, "settings, devices")
    await screenshot(alice, "settings-devices")
    assert alice.errors == []  # type: ignore[attr-defined]


@WEB
@SIZES
async def test_menus_open_inside_the_window(harness: Harness, browser: Browser, size: str) -> None:
    await harness.add_user("alice")
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    # The longest custom text the server takes: the button shows what fits of it.
    await alice.locator("#presence-button").click()
    await alice.get_by_label("Custom status text").fill("Back after the all-hands " * 40)
    await alice.get_by_role("button", name="Set status").click()
    for button, menu in (("#presence-button", "#presence-menu"), ("#user-button", "#user-menu")):
        await alice.locator(button).click()
        await expect(alice.locator(menu)).to_be_visible()
        assert await menus_outside(alice) == []
        await check_screen(alice, menu)
        await alice.keyboard.press("Escape")
        await expect(alice.locator(menu)).to_be_hidden()
    # The window narrowed to the smallest phone, with the menu open: it moves to fit.
    await alice.set_viewport_size({"width": 360, "height": 640})
    await alice.locator("#presence-button").click()
    await expect(alice.locator("#presence-menu")).to_be_visible()
    assert await menus_outside(alice) == []
    assert await alice.evaluate("document.documentElement.scrollWidth") <= 360


@WEB
async def test_a_phone_shows_one_pane_at_a_time(harness: Harness, browser: Browser) -> None:
    await company(harness)
    alice = await portal(browser, harness.server.web.port, "phone", ALICE)
    contacts, chats = alice.locator(".contacts-panel"), alice.locator(".chat-panel")
    await expect(contacts).to_be_visible()
    await expect(chats).to_be_hidden()
    await open_chat(alice, "bob")
    await expect(contacts).to_be_hidden()
    await expect(alice.get_by_label("Message to bob")).to_be_focused()
    await expect(alice.get_by_role("button", name="Send")).to_be_in_viewport()

    # The back control, and the browser's own back button, return to the list.
    await alice.get_by_role("button", name="Back to contacts").click()
    await expect(contacts).to_be_visible()
    await expect(chats).to_be_hidden()
    await open_chat(alice, "bob")
    await alice.go_back()
    await expect(contacts).to_be_visible()

    # A message while the list shows marks the contact, and the chat is read once opened.
    bob = harness.clients[0]
    bob.send_message(mto=ALICE, mbody="Got a minute?", mtype="chat")
    chat_button = row(alice, "bob").get_by_role("button", name="Chat with bob (new message)")
    await expect(chat_button).to_be_visible()
    await chat_button.click()
    await expect(alice.get_by_role("log", name="Conversation with bob")).to_contain_text(
        "Got a minute?"
    )
    await alice.get_by_role("button", name="Back to contacts").click()
    await expect(
        row(alice, "bob").get_by_role("button", name="Chat with bob", exact=True)
    ).to_be_visible()

    # Settings are a pane too, with the way back.
    await open_settings(alice)
    await expect(contacts).to_be_hidden()
    await alice.get_by_role("link", name="Back to contacts").click()
    await expect(contacts).to_be_visible()
    assert alice.errors == []  # type: ignore[attr-defined]


@WEB
@SIZES
async def test_the_contact_list_a_company_needs(
    harness: Harness, browser: Browser, size: str
) -> None:
    people = await company(harness)
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    groups = alice.locator(".contact-group")
    await expect(groups.locator(".group-title")).to_have_text(
        [
            "Engineering",
            LONG_GROUP,
            "Sales",
            "Other contacts",
            "Not sharing their presence with you",
        ]
    )
    # Available first, then the busy, the away, and those not logged in.
    await expect(
        alice.locator(".contact-group[data-group='Engineering'] .contact-name")
    ).to_have_text(["bob", "carol"])
    await expect(alice.locator(".contact-group[data-group='Sales'] .contact-name")).to_have_text(
        ["carol", "gina"]
    )
    # Dave shows as away, "Not logged in": he is not online, nor is gina.
    await expect(row(alice, "dave").locator(".contact-state")).to_have_text("Away")
    await expect(row(alice, "dave").locator(".contact-status")).to_have_text("Not logged in")
    await expect(alice.locator("#contacts-count")).to_have_text("3 of 5 online")
    await expect(alice.locator(".contact-group[data-group='Sales'] .group-count")).to_have_text(
        "1 of 2 online"
    )
    # Last seen, from the server's last activity (XEP-0012).
    await expect(row(alice, "dave").locator(".contact-detail")).to_have_text(LAST_SEEN)
    await expect(row(alice, "gina").locator(".contact-state")).to_have_text("Offline")
    await expect(row(alice, "gina").locator(".contact-detail")).to_have_text(LAST_SEEN)

    # Those who do not share their presence with alice, apart, each saying why.
    apart = alice.locator(".contact-group[data-group='not-sharing']")
    await expect(apart.locator(".contact-name")).to_have_text(["erin", "frank"])
    await expect(row(alice, "erin").locator(".contact-note")).to_have_text(
        "Waiting for them to accept your request"
    )
    await expect(row(alice, "frank").locator(".contact-state")).to_have_text("Presence not shared")

    # A change seen as it happens moves the row, and says since when.
    people.clients["carol"].send_presence()
    people.clients["bob"].send_presence(pshow="away", pstatus="Coffee")
    await expect(
        alice.locator(".contact-group[data-group='Engineering'] .contact-name")
    ).to_have_text(["carol", "bob"])
    await expect(row(alice, "bob").locator(".contact-detail")).to_have_text(
        re.compile(r"^Away since .+")
    )
    await expect(row(alice, "carol").first.locator(".contact-detail")).to_have_text("")
    await expect(alice.locator("#contacts-count")).to_have_text("3 of 5 online")
    people.clients["bob"].disconnect()
    await expect(row(alice, "bob").locator(".contact-state")).to_have_text("Offline")
    await expect(row(alice, "bob").locator(".contact-detail")).to_have_text(LAST_SEEN)
    await expect(alice.locator("#contacts-count")).to_have_text("2 of 5 online")

    # The search box: by name, address or status text, across the groups.
    search = alice.get_by_role("searchbox", name="Search contacts")
    await search.fill("sales")
    # Carol is in Engineering too, and the group is part of what she is found by.
    await expect(alice.locator(".contact:visible .contact-name")).to_have_text(
        ["carol", "carol", "gina"]
    )
    await search.fill("planning QUARTERLY")
    await expect(alice.locator(".contact:visible .contact-name")).to_have_text([LONG_NAME])
    await search.fill("worthington")
    await expect(alice.locator(".contact:visible .contact-name")).to_have_text([LONG_NAME])
    await search.fill("nobody-by-this-name")
    await expect(alice.locator("#contacts-no-match")).to_have_text(
        "No contact matches “nobody-by-this-name”."
    )
    await search.press("Escape")
    await expect(alice.locator(".contact:visible")).to_have_count(8)
    assert alice.errors == []  # type: ignore[attr-defined]


@WEB
@SIZES
async def test_the_full_status_text_shows_on_hover_and_tap(
    harness: Harness, browser: Browser, size: str
) -> None:
    await company(harness)
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    carol = row(alice, "carol", "Engineering")
    status = carol.locator(".contact-status")
    await expect(status).to_have_text(LONG_STATUS)
    main = carol.locator(".contact-main")
    await expect(main).to_have_attribute("title", f"Away: {LONG_STATUS}")
    # Two lines of it in the row, far more than a cut at 30 characters would leave.
    presence = carol.locator(".contact-presence")
    line = await presence.evaluate("node => parseFloat(getComputedStyle(node).lineHeight)")
    collapsed = await presence.evaluate("node => node.getBoundingClientRect().height")
    assert collapsed >= 2 * line - 1
    hidden = await presence.evaluate("node => node.scrollHeight > node.clientHeight")
    assert hidden, "the whole text fits anyway: make it longer"
    await main.click()
    await expect(main).to_have_attribute("aria-expanded", "true")
    await alice.wait_for_function(
        "node => node.scrollHeight <= node.clientHeight", arg=await presence.element_handle()
    )
    await check_screen(alice, "a row expanded")
    await main.click()
    await expect(main).to_have_attribute("aria-expanded", "false")


@WEB
@SIZES
async def test_the_two_block_lists_are_told_apart(
    harness: Harness, browser: Browser, size: str
) -> None:
    people = await company(harness)
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    await open_settings(alice)
    presence_blocked = alice.locator("#blocked-section")
    blocked = alice.locator("#blocklist-section")
    await expect(presence_blocked.locator("summary")).to_have_text(
        "Users blocked from seeing your presence status (1)"
    )
    await expect(presence_blocked).to_contain_text(
        "They cannot see your presence status. Messages still reach you."
    )
    await expect(presence_blocked.locator(".person-jid")).to_have_text([jid("ivan")])
    await expect(blocked.locator("summary")).to_have_text(
        "Blocked completely: no messages at all (1)"
    )
    await expect(blocked.locator(".person-jid")).to_have_text([jid("mallory")])

    # Alice's phone blocks bob completely: the portal hears it, and says so in the list too.
    await people.clients["alice"].plugin["xep_0191"].block([BOB])
    await expect(blocked.locator(".person-jid")).to_have_text([BOB, jid("mallory")])
    await back_to_contacts(alice)
    await expect(row(alice, "bob").locator(".contact-note")).to_have_text(
        "Blocked: no messages at all, either way"
    )
    await expect(row(alice, "bob").locator(".contact-state")).to_have_text("Blocked")
    # Someone alice sees but who may not see her: the other list's words.
    await open_settings(alice)
    await alice.get_by_role("button", name=f"Block {jid('gina')}").click()
    await expect(presence_blocked.locator(".person-jid")).to_have_text([jid("gina"), jid("ivan")])
    await back_to_contacts(alice)
    await expect(row(alice, "gina").locator(".contact-note")).to_have_text(
        "Cannot see your presence status (messages still reach you)"
    )
    await expect(row(alice, "gina").locator(".contact-state")).to_have_text("Offline")
    await open_settings(alice)

    # Unblocking from the portal lets messages through again.
    await alice.get_by_role("button", name=f"Unblock {BOB}").click()
    await expect(blocked.locator(".person-jid")).to_have_text([jid("mallory")])
    await expect(alice.locator("#lists-result")).to_have_text(
        f"{BOB} is off your block list: messages can pass again."
    )
    await back_to_contacts(alice)
    await expect(row(alice, "bob").locator(".contact-state")).to_have_text("Available")
    assert not await row(alice, "bob").locator(".contact-note").is_visible()
    assert alice.errors == []  # type: ignore[attr-defined]


@WEB
@SIZES
async def test_a_request_refused_under_nobody_shows_at_once(
    harness: Harness, browser: Browser, size: str
) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    alice = await portal(browser, harness.server.web.port, size, ALICE)
    await open_settings(alice)
    await alice.get_by_label(
        "Nobody can see my presence status (except explicitly allowed users)"
    ).check()
    await alice.get_by_role("button", name="Save").click()
    await expect(alice.locator("#visibility-result")).to_have_text("Saved.")
    bob, bob_in = await online(harness, "bob")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))
    await expect(alice.locator("#blocked-count")).to_have_text("1")
    await expect(alice.locator("#blocked-list .person-jid")).to_have_text([BOB])
    assert alice.errors == []  # type: ignore[attr-defined]
