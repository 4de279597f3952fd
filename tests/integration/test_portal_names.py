"""Names in the portal, in Chromium: every screen fits the window, at a desk and on a phone,
with the longest display names and nicknames; a pending request shows the nickname it carried
(XEP-0172) with the address beneath, unless the requester's own display name is known; adding
a contact sends the user's display name as the request's nickname; and a roster's names arrive
in one names query at sign-in, not in one vCard IQ per contact.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from chorus_presence.admin import rosters as admin_rosters
from chorus_presence.xmpp.jid import JID
from tests.integration.harness import DOMAIN, Harness, Inbox, link, presence_of
from tests.integration.harness.portal import (
    LONG_NAME,
    SIZES,
    axe_violations,
    check_screen,
    company,
    jid,
    open_portal,
    overflow,
    phone,
    portal,
    screenshot,
    sign_in,
)

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
WEB = {"web": {"enabled": True, "port": 0}}
NICK = "{http://jabber.org/protocol/nick}nick"
# As long as a nickname may be, in words too long for a phone's line.
LONG_NICK = "Carolina Wilhelmina Montgomery-Featherstonehaugh of Procurement"
COLLEAGUES = 40
# Up to 64 characters, the longest a display name may be; one with nowhere to break a line.
LONG_NAMES = {
    "alice": "Alexandra Konstantinopoulou-Vanderbilt, Head of Regional Finance",
    "bob": "Bob",
    "carol": "Carolina Wilhelmina Featherstonehaugh (Sales, Iberia and LatAm)",
    LONG_NAME: "MaximilianBartholomewFitzgeraldMontgomeryWorthingtonSmytheJunior",
    "erin": "Erin O'Sullivan-Kavanagh, Procurement and Vendor Management Team",
    "ivan": "Ivan Aleksandrovich Rostropovich-Tchaikovsky, Legal & Contracts",
    "mallory": "Mallory",
}

expect.set_options(timeout=10_000)
pytestmark = pytest.mark.server_config(**WEB)


@pytest.mark.parametrize("size", SIZES)
async def test_every_screen_fits_with_the_longest_names(
    harness: Harness, browser: Browser, size: str
) -> None:
    await company(harness)
    for user, name in LONG_NAMES.items():
        assert await harness.ctx.repositories.display_names.set(user, name)
    await harness.add_user("zoe")
    await harness.ctx.subscriptions.exchange(
        JID("zoe", DOMAIN), JID("alice", DOMAIN), "subscribe", "Hello", nick=LONG_NICK
    )
    page = await portal(browser, harness.server.web.port, size, ALICE)
    long_row = page.locator(f".contact[data-jid='{jid(LONG_NAME)}']")
    await expect(long_row.locator(".contact-name")).to_have_text(LONG_NAMES[LONG_NAME])
    await expect(long_row.locator(".contact-jid")).to_have_text(jid(LONG_NAME))
    await expect(page.locator("#user-name")).to_have_text(LONG_NAMES["alice"])
    await check_screen(page, "contacts")
    assert await axe_violations(page) == []
    await page.locator("#user-button").click()
    await expect(page.locator("#user-menu")).to_be_visible()
    await check_screen(page, "user menu")
    await page.keyboard.press("Escape")

    await long_row.get_by_role("button", name="Chat with").click()
    title = page.locator(".chat-panel:visible .chat-title")
    await expect(title).to_have_text(LONG_NAMES[LONG_NAME])
    await check_screen(page, "chat")
    await screenshot(page, "display-names-chat")

    await page.goto(page.url.split("#")[0] + "#/settings/presence")
    zoe = page.locator(f"#pending-list .person[data-jid='{jid('zoe')}']")
    await expect(zoe.locator(".person-name")).to_have_text(LONG_NICK)
    ivan = page.locator(f"#blocked-list .person[data-jid='{jid('ivan')}']")
    await expect(ivan.locator(".person-name")).to_have_text(LONG_NAMES["ivan"])
    await check_screen(page, "settings, presence")
    assert await axe_violations(page) == []
    if phone(page):
        await page.goto(page.url.split("#")[0] + "#/settings/profile")
        await expect(page.get_by_label("Your name")).to_have_value(LONG_NAMES["alice"])
        await check_screen(page, "settings, profile")
    assert page.errors == []  # type: ignore[attr-defined]


def requester(harness: Harness, user: str):
    client = harness.make_client(user)
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    return client


@pytest.mark.parametrize("size", SIZES)
async def test_a_request_shows_its_nickname_with_the_address_beneath(
    harness: Harness, browser: Browser, size: str
) -> None:
    for user in ("alice", "carol", "dave"):
        await harness.add_user(user)
    await harness.ctx.repositories.display_names.set("dave", "Dave Chosen")
    page = await portal(browser, harness.server.web.port, size, ALICE)
    await page.goto(page.url.split("#")[0] + "#/settings/presence")
    for user, nick in (("carol", LONG_NICK), ("dave", "D.")):
        client = requester(harness, user)
        assert await harness.connect(client) == "session_start"
        client.plugin["chorus"].subscribe(ALICE, nick=nick, status="May I?")
    carol = page.locator(f"#pending-list .person[data-jid='{CAROL}']")
    await expect(carol.locator(".person-name")).to_have_text(LONG_NICK)
    await expect(carol.locator(".person-jid")).to_have_text(CAROL)
    # Measured in one go: the list is drawn again as names arrive.
    assert await carol.evaluate(
        """(row) => {
          const name = row.querySelector(".person-name").getBoundingClientRect();
          const jid = row.querySelector(".person-jid").getBoundingClientRect();
          return jid.top >= name.bottom - 1;
        }"""
    )
    # The name Dave's account holds is shown, not the nickname he sent with the request.
    dave = page.locator(f"#pending-list .person[data-jid='{DAVE}']")
    await expect(dave.locator(".person-name")).to_have_text("Dave Chosen")
    await screenshot(page, "display-names-requests")
    assert await overflow(page) == []
    assert page.errors == []  # type: ignore[attr-defined]


async def test_adding_a_contact_sends_the_users_name(harness: Harness, browser: Browser) -> None:
    for user in ("alice", "bob"):
        await harness.add_user(user)
    await harness.ctx.repositories.display_names.set("alice", "Alice Liddell")
    bob = await harness.login("bob")
    bob.auto_authorize = None
    bob.auto_subscribe = False
    bob_in = Inbox(bob, "presence")
    bob.send_presence()
    page = await portal(browser, harness.server.web.port, "desktop", ALICE)
    await expect(page.locator("#user-name")).to_have_text("Alice Liddell")
    await page.get_by_label("Add a contact").fill(BOB)
    await page.get_by_role("button", name="Add", exact=True).click()
    request = await bob_in.expect(presence_of(bob, "subscribe", ALICE), "the request")
    assert request.xml.findtext(NICK) == "Alice Liddell"
    assert page.errors == []  # type: ignore[attr-defined]


def count_queries(page: Page) -> dict[str, int]:
    """The vCard gets and the names queries the page sends over its WebSocket from now on."""
    sent = {"vcard": 0, "names": 0}

    def on_frame(payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else payload.decode()
        if text.startswith("<iq") and 'type="get"' in text:
            sent["vcard"] += text.count("urn:ietf:params:xml:ns:vcard-4.0")
            sent["names"] += text.count("urn:chorus:names:0")

    def on_socket(socket: WebSocket) -> None:
        socket.on("framesent", on_frame)

    page.on("websocket", on_socket)
    return sent


async def test_a_rosters_names_come_in_one_query(harness: Harness, browser: Browser) -> None:
    await harness.add_user("alice")
    names = harness.ctx.repositories.display_names
    for number in range(COLLEAGUES):
        user = f"colleague{number:02}"
        await harness.add_user(user)
        await names.set(user, f"Colleague Number {number:02}")
        await link(harness, "alice", user)
    # A contact the user named in the roster keeps that name.
    await admin_rosters.add(harness.ctx, "alice", f"colleague00@{DOMAIN}", name="Mentor")
    page = await open_portal(browser, harness.server.web.port, "desktop")
    sent = count_queries(page)
    await sign_in(page, ALICE)
    last = page.locator(f".contact[data-jid='colleague{COLLEAGUES - 1:02}@{DOMAIN}']")
    await expect(last.locator(".contact-name")).to_have_text(
        f"Colleague Number {COLLEAGUES - 1:02}"
    )
    shown = await page.locator(".contact .contact-name").all_inner_texts()
    assert sorted(shown) == sorted(
        ["Mentor", *(f"Colleague Number {number:02}" for number in range(1, COLLEAGUES))]
    )
    assert sent["vcard"] == 0
    # The roster's and the visibility lists' names, each asked for once.
    assert 1 <= sent["names"] <= 2
    assert page.errors == []  # type: ignore[attr-defined]
