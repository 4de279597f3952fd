"""The portal stays signed in (XEP-0484 tokens, never the password, in the browser): across
reloads and tabs with "Keep me signed in", in one tab only without; signing out revokes the
token, and revoking a browser from another signs it out there and then.
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.integration.harness import DOMAIN, PASSWORD, Harness
from tests.integration.harness.fast import secure, token_login

ALICE = f"alice@{DOMAIN}"
WEB = {"web": {"enabled": True, "port": 0}}
RECORD = "chorus-portal-sign-in"
SIGN_IN_HEADING = "Sign in to Chorus Presence"

expect.set_options(timeout=10_000)
pytestmark = pytest.mark.server_config(**WEB)


async def new_browser(browser: Browser) -> BrowserContext:
    """Another browser, as far as the portal can tell: storage of its own."""
    return await browser.new_context(viewport={"width": 1280, "height": 800})


async def open_portal(harness: Harness, context: BrowserContext) -> Page:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"http://127.0.0.1:{harness.server.web.port}/")
    return page


async def sign_in(page: Page, *, keep: bool = True) -> None:
    await page.get_by_label("Chorus address").fill(ALICE)
    await page.get_by_label("Password").fill(PASSWORD)
    keeping = page.get_by_label("Keep me signed in")
    await expect(keeping).to_be_checked()
    if not keep:
        await keeping.uncheck()
    await page.get_by_role("button", name="Sign in").click()
    await signed_in(page)


async def signed_in(page: Page) -> None:
    await expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    await expect(page.locator("#presence-label")).to_have_text("Available")
    await expect(page.locator("#login-view")).to_be_hidden()


async def signed_out(page: Page) -> None:
    await expect(page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
    await expect(page.locator("#app-view")).to_be_hidden()


async def storage(page: Page) -> dict[str, dict[str, str]]:
    return await page.evaluate("() => ({local: {...localStorage}, session: {...sessionStorage}})")


async def open_settings(page: Page, section: str) -> None:
    await page.locator("#user-button").click()
    await page.locator("#user-menu").get_by_role("link", name="Settings").click()
    await page.get_by_role("navigation", name="Settings").get_by_role("link", name=section).click()
    await expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()


async def test_a_reload_and_a_second_tab_stay_signed_in(harness: Harness, browser: Browser) -> None:
    await harness.add_user("alice")
    context = await new_browser(browser)
    page = await open_portal(harness, context)
    await sign_in(page)
    kept = await storage(page)
    assert RECORD in kept["local"] and RECORD not in kept["session"]
    # A token, never the password, wherever the portal keeps anything.
    assert all(PASSWORD not in value for area in kept.values() for value in area.values())

    await page.reload()
    await signed_in(page)
    second = await open_portal(harness, context)
    await signed_in(second)
    sessions = harness.ctx.sessions.of_account(harness.ctx.sessions.all()[0].jid.bare)
    assert len(sessions) == 2

    # Both tabs are one signed-in browser, named as a person would name it.
    await open_settings(second, "Signed-in browsers")
    rows = second.locator("#browser-list li")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("This browser")
    await expect(rows.first).to_contain_text("(Chorus portal)")
    [sign_in_row] = await harness.ctx.sign_ins.of_account("alice")
    assert sign_in_row.label.endswith(" on Linux (Chorus portal)"), sign_in_row.label
    assert page.errors == [] and second.errors == []  # type: ignore[attr-defined]


async def test_without_keep_me_signed_in_only_this_tab_stays_signed_in(
    harness: Harness, browser: Browser
) -> None:
    await harness.add_user("alice")
    context = await new_browser(browser)
    page = await open_portal(harness, context)
    await sign_in(page, keep=False)
    kept = await storage(page)
    assert RECORD in kept["session"] and RECORD not in kept["local"]
    await page.reload()
    await signed_in(page)

    other_tab = await open_portal(harness, context)
    await signed_out(other_tab)
    await expect(other_tab.locator("#login-submit")).to_be_enabled()
    assert RECORD not in (await storage(other_tab))["local"]


async def test_signing_out_revokes_the_token_in_every_tab(
    harness: Harness, browser: Browser
) -> None:
    await harness.add_user("alice")
    context = await new_browser(browser)
    page = await open_portal(harness, context)
    await sign_in(page)
    other_tab = await open_portal(harness, context)
    await signed_in(other_tab)
    record = json.loads((await storage(page))["local"][RECORD])

    await page.locator("#user-button").click()
    await page.get_by_role("button", name="Sign out").click()
    await signed_out(page)
    assert RECORD not in (await storage(page))["local"]
    # The other tab shared the sign-in: it is signed out there and then.
    await expect(other_tab.locator("#connection-banner")).to_be_visible()
    await expect(other_tab.locator("#connection-message")).to_contain_text("signed out")
    assert await harness.ctx.sign_ins.of_account("alice") == []
    # The token a thief might have copied before logs nobody in.
    raw = await secure(harness)
    stolen = await token_login(raw, "alice", record["token"], client_id=record["clientId"])
    assert stolen.condition == "not-authorized"
    await page.reload()
    await signed_out(page)


async def test_revoking_a_browser_from_another_signs_it_out_live(
    harness: Harness, browser: Browser
) -> None:
    await harness.add_user("alice")
    laptop = await open_portal(harness, await new_browser(browser))
    await sign_in(laptop)
    phone = await open_portal(harness, await new_browser(browser))
    await sign_in(phone)

    await open_settings(phone, "Signed-in browsers")
    rows = phone.locator("#browser-list li")
    await expect(rows).to_have_count(2)
    other = rows.filter(has_not_text="This browser")
    await other.get_by_role("button", name="Sign out").click()
    await expect(phone.locator("#browsers-result")).to_contain_text("Signed out")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("This browser")

    await expect(laptop.locator("#connection-banner")).to_be_visible()
    await expect(laptop.locator("#connection-message")).to_contain_text("signed out")
    # Its token is refused from now on, and forgotten: a reload asks for the password.
    await laptop.reload()
    await signed_out(laptop)
    await expect(laptop.locator("#login-submit")).to_be_enabled()
    assert RECORD not in (await storage(laptop))["local"]
    await expect(phone.locator("#presence-label")).to_have_text("Available")
