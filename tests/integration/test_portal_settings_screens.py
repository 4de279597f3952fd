"""The settings screens added after the seed's, Signed-in browsers and Profile, held to what
the other screens are held to, at a desk and on a phone: they fit the window with the longest
labels and names (touch targets included on a phone), axe-core finds nothing serious on them,
and their flows work by keyboard alone: naming yourself, and signing out another browser,
which is signed out there and then.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.integration.harness import DOMAIN, Harness
from tests.integration.harness.fast import password_login, secure
from tests.integration.harness.portal import (
    SIZES,
    axe_violations,
    check_screen,
    open_portal,
    phone,
    screenshot,
    sign_in,
    tab_to,
)

ALICE = f"alice@{DOMAIN}"
# What a client may call itself, kept to 100 characters, with nowhere to break a line.
LONG_DEVICE = "Reception" + "Desk" * 30
NAME = "Alexandra Konstantinopoulou-Vanderbilt, Head of Regional Finance"

expect.set_options(timeout=10_000)
pytestmark = pytest.mark.server_config(web={"enabled": True, "port": 0})


async def to_settings(page: Page, section: str) -> None:
    """User menu, Settings, then the section's link, all by keyboard."""
    keys = page.keyboard
    await tab_to(page, page.locator("#user-button"))
    await keys.press("Enter")
    await expect(page.locator("#user-menu-settings")).to_be_focused()
    await keys.press("Enter")
    await expect(page.get_by_role("heading", name="Presence", exact=True)).to_be_visible()
    link = page.get_by_role("navigation", name="Settings").get_by_role("link", name=section)
    await tab_to(page, link)
    await keys.press("Enter")
    await expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()


@pytest.mark.parametrize("size", SIZES)
async def test_the_profile_by_keyboard_alone(harness: Harness, browser: Browser, size: str) -> None:
    await harness.add_user("alice")
    page = await open_portal(browser, harness.server.web.port, size)
    await sign_in(page, ALICE)
    await to_settings(page, "Profile")
    await check_screen(page, "settings, profile")
    assert await axe_violations(page) == []

    field = page.get_by_label("Your name")
    await tab_to(page, field)
    await page.keyboard.type(NAME)
    await page.keyboard.press("Enter")
    await expect(page.locator("#own-name-result")).to_have_text("Saved.")
    assert await harness.ctx.repositories.display_names.get("alice") == NAME
    await expect(page.locator("#user-name")).to_have_text(NAME)
    await check_screen(page, "settings, profile, saved")
    assert await axe_violations(page) == []

    # A name the server refuses is told, and the focus stays in the field to correct it.
    await field.fill("")
    await page.keyboard.type("Alice\u0085Liddell")
    await page.keyboard.press("Enter")
    await expect(page.locator("#own-name-result")).to_have_text(
        "Not saved: The display name contains a control character"
    )
    await expect(field).to_be_focused()
    assert await harness.ctx.repositories.display_names.get("alice") == NAME
    assert await axe_violations(page) == []
    assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", SIZES)
async def test_signed_in_browsers_by_keyboard_alone(
    harness: Harness, browser: Browser, size: str
) -> None:
    await harness.add_user("alice")
    # Another client that stays signed in, and says it is something with a very long name.
    other = await secure(harness)
    assert (await password_login(other, "alice", device=LONG_DEVICE)).success
    page = await open_portal(browser, harness.server.web.port, size)
    await sign_in(page, ALICE)
    await to_settings(page, "Signed-in browsers")
    rows = page.locator("#browser-list li")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text=LONG_DEVICE[:40])).to_have_count(1)
    await check_screen(page, "settings, signed-in browsers")
    assert await axe_violations(page) == []
    await screenshot(page, "settings-browsers")

    sign_out = rows.filter(has_not_text="This browser").get_by_role("button", name="Sign out")
    await tab_to(page, sign_out)
    await page.keyboard.press("Enter")
    await expect(page.locator("#browsers-result")).to_contain_text("Signed out")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("This browser")
    # Its stream is ended there and then.
    await other.expect(rb"</stream:stream>|<stream:error>")
    # The focus is on the page's heading, not lost with the row.
    await expect(page.get_by_role("heading", name="Signed-in browsers")).to_be_focused()
    assert await axe_violations(page) == []
    if phone(page):
        await check_screen(page, "settings, signed-in browsers, one left")
    assert page.errors == []  # type: ignore[attr-defined]
