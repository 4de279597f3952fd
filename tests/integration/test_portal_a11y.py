"""The portal's accessibility at a desk and on a phone: axe-core finds nothing serious or
critical on any screen, the seed guide's flows (set a status, accept a request, chat) work from
the keyboard alone with the focus always visible, and a state is told by its words and an icon
of its own, never by colour alone.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from chorus_presence.admin.presence import session_kick
from tests.integration.harness import PASSWORD, Harness, Inbox, presence_of
from tests.integration.harness.portal import (
    axe_violations,
    company,
    jid,
    open_portal,
    phone,
    portal,
    tab_to,
)

ALICE, BOB = jid("alice"), jid("bob")
WEB = pytest.mark.server_config(web={"enabled": True, "port": 0})
SIZES = pytest.mark.parametrize("size", ["desktop", "phone"])
TONES = ("available", "away", "busy", "offline", "blocked", "unknown")

expect.set_options(timeout=10_000)


async def clean(page: Page, screen: str) -> None:
    assert await axe_violations(page) == [], screen


@WEB
@SIZES
async def test_axe_finds_nothing_serious_on_any_screen(
    harness: Harness, browser: Browser, size: str
) -> None:
    await company(harness)
    alice = await open_portal(browser, harness.server.web.port, size)
    await clean(alice, "sign-in")
    await alice.get_by_label("Chorus address").fill(ALICE)
    await alice.get_by_role("button", name="Sign in").click()
    await expect(alice.locator("#login-error")).not_to_be_empty()
    await clean(alice, "sign-in with an error")
    await alice.get_by_label("Password", exact=True).fill(PASSWORD)
    await alice.get_by_role("button", name="Sign in").click()
    # Carol is in two groups, so in two rows.
    await expect(alice.locator("#contact-groups .contact")).to_have_count(8)
    await clean(alice, "contacts")

    await alice.locator("#presence-button").click()
    await clean(alice, "presence menu")
    await alice.keyboard.press("Escape")
    await alice.locator("#user-button").click()
    await clean(alice, "user menu")
    await alice.keyboard.press("Escape")
    await (
        alice.locator(f".contact[data-jid='{BOB}']")
        .get_by_role("button", name="Chat with bob")
        .click()
    )
    box = alice.get_by_label("Message to bob")
    await box.fill("Hello")
    await box.press("Enter")
    await clean(alice, "chat")

    await alice.locator("#user-button").click()
    await alice.locator("#user-menu").get_by_role("link", name="Settings").click()
    await expect(alice.get_by_role("heading", name="Presence", exact=True)).to_be_visible()
    await expect(alice.locator("#pending-list .person")).to_have_count(1)
    await clean(alice, "settings, presence")
    await (
        alice.get_by_role("navigation", name="Settings").get_by_role("link", name="Devices").click()
    )
    await expect(alice.locator("#device-rows tr")).to_have_count(2)
    await clean(alice, "settings, devices")

    await session_kick(harness.ctx, ALICE)
    await expect(alice.locator("#connection-banner")).to_be_visible()
    await clean(alice, "signed out by the server")


@WEB
@SIZES
async def test_the_guides_flows_by_keyboard_alone(
    harness: Harness, browser: Browser, size: str
) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    alice = await open_portal(browser, harness.server.web.port, size)
    keys = alice.keyboard

    # Sign in: the address field has the focus.
    await expect(alice.get_by_label("Chorus address")).to_be_focused()
    await keys.type(ALICE)
    await tab_to(alice, alice.get_by_label("Password", exact=True))
    await keys.type(PASSWORD)
    await keys.press("Enter")
    await expect(alice.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()

    # Set a status: the presence menu, arrows to the state, the custom text, Enter.
    await tab_to(alice, alice.locator("#presence-button"))
    await keys.press("Enter")
    await expect(alice.get_by_role("dialog").get_by_label("Available", exact=True)).to_be_focused()
    for _ in range(5):
        await keys.press("ArrowDown")
    await expect(alice.get_by_role("dialog").get_by_label("In Meeting", exact=True)).to_be_checked()
    await tab_to(alice, alice.get_by_label("Custom status text"))
    await keys.type("Design review")
    await keys.press("Enter")
    await expect(alice.locator("#presence-label")).to_have_text("In Meeting")
    await expect(alice.locator("#presence-button")).to_be_focused()

    # Accept a request: the user menu, Settings, the Accept button.
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await expect(alice.locator("#user-badge")).to_have_text("1")
    await tab_to(alice, alice.locator("#user-button"))
    await keys.press("Enter")
    await expect(alice.locator("#user-menu-settings")).to_be_focused()
    await keys.press("Enter")
    await expect(alice.get_by_role("heading", name="Presence", exact=True)).to_be_visible()
    await tab_to(alice, alice.get_by_role("button", name=f"Accept {BOB}"))
    await keys.press("Enter")
    await bob_in.expect(presence_of(bob, "subscribed", ALICE), "alice's answer")
    await expect(alice.locator("#allowed-list")).to_contain_text(BOB)
    await bob_in.expect(
        lambda s: s["from"].bare == ALICE and s["status"] == "Design review", "alice's state"
    )

    # Chat: back to the contacts, Chat, type, Enter; the answer arrives in the log.
    await alice.get_by_role("heading", name="Presence", exact=True).focus()
    contacts_link = (
        alice.get_by_role("link", name="Back to contacts")
        if phone(alice)
        else alice.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts")
    )
    await tab_to(alice, contacts_link, backwards=True)
    await keys.press("Enter")
    await expect(alice.locator("#contact-search")).to_be_visible()
    await tab_to(alice, alice.get_by_role("button", name="Chat with bob"))
    await keys.press("Enter")
    await expect(alice.get_by_label("Message to bob")).to_be_focused()
    await keys.type("Lunch at noon?")
    await keys.press("Enter")
    message = await bob_in.expect(lambda s: s.name == "message" and s["body"], "alice's message")
    assert message["body"] == "Lunch at noon?"
    bob.send_message(mto=ALICE, mbody="Sounds good", mtype="chat")
    await expect(alice.get_by_role("log", name="Conversation with bob")).to_contain_text(
        "Sounds good"
    )
    if phone(alice):
        await tab_to(alice, alice.get_by_role("button", name="Back to contacts"), backwards=True)
        await keys.press("Enter")
        await expect(alice.locator("#contact-search")).to_be_visible()
    assert alice.errors == []  # type: ignore[attr-defined]


@WEB
async def test_a_state_is_told_by_words_and_an_icon_not_colour_alone(
    harness: Harness, browser: Browser
) -> None:
    await harness.add_user("alice")
    alice = await portal(browser, harness.server.web.port, "desktop", ALICE)
    shapes = await alice.evaluate(
        """(tones) => tones.map((tone) => {
          const dot = document.createElement("span");
          dot.className = `dot tone-${tone}`;
          document.body.append(dot);
          const own = getComputedStyle(dot);
          const mark = getComputedStyle(dot, "::after");
          const shape = [own.borderStyle, own.boxShadow.replace(/rgba?\\([^)]*\\)/g, ""),
                         own.backgroundColor === "rgba(0, 0, 0, 0)" ? "hollow" : "filled",
                         mark.content, mark.width, mark.height, mark.borderStyle, mark.borderWidth,
                         mark.transform, mark.backgroundColor === "rgba(0, 0, 0, 0)"].join(" ");
          dot.remove();
          return shape;
        })""",
        list(TONES),
    )
    # Every tone its own shape: with the colours taken away, each still looks different.
    assert len(set(shapes)) == len(TONES), dict(zip(TONES, shapes, strict=True))
    # And every state in the menu is written out next to its icon.
    await alice.locator("#presence-button").click()
    options = alice.locator(".state-option")
    await expect(options).to_have_text(
        ["Available", "Away", "Do Not Disturb", "Be Right Back", "Busy", "In Meeting"]
    )
    for index in range(6):
        await expect(options.nth(index).locator(".dot")).to_have_attribute("aria-hidden", "true")
