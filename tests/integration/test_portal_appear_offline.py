"""The portal's Appear offline in Chromium: the status menu's switch, a contact's stock client
seeing the user go and come back, the header saying so while it is on, and the setting still
there after the page is loaded again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    link,
    quiet_slixmpp,
    start_server,
    sync,
    write_config,
)
from tests.integration.harness.portal import axe_violations, check_screen, portal

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"

expect.set_options(timeout=10_000)


@pytest.fixture
async def served(tmp_path: Path, tls_files: tuple[Path, Path]) -> AsyncIterator[Harness]:
    quiet_slixmpp()
    # Offline storage on: a message to a user not logged in gets no answer, nor to one who
    # appears offline.
    config = write_config(
        tmp_path, tls_files, web={"enabled": True, "port": 0}, messages={"offline": "store"}
    )
    running = await start_server(config, tls_files[0])
    for name in ("alice", "bob"):
        await running.add_user(name)
    await link(running, "alice", "bob")
    try:
        yield running
    finally:
        await running.close()


async def test_the_status_menu_makes_the_user_appear_offline(
    served: Harness, browser: Browser
) -> None:
    bob = await served.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    alice = await portal(browser, served.server.web.port, "desktop", ALICE)
    await bob_in.get(lambda p: p["type"] == "available" and p["from"].bare == ALICE)
    hidden_note = alice.locator("#presence-hidden")
    await expect(hidden_note).to_be_hidden()

    await alice.locator("#presence-button").click()
    switch = alice.get_by_label("Appear offline")
    await expect(switch).not_to_be_checked()
    await switch.check()
    await bob_in.get(lambda p: p["type"] == "unavailable" and p["from"].bare == ALICE)
    await expect(hidden_note).to_be_visible()
    await expect(hidden_note).to_have_text("Appearing offline")

    # The user still chats: bob's message arrives, and nothing tells bob she is there.
    bob.send_message(mto=ALICE, mbody="Are you around?", mtype="chat")
    await sync(bob)
    await alice.keyboard.press("Escape")
    await alice.locator(f".contact[data-jid='{BOB}']").click()
    await expect(alice.get_by_text("Are you around?")).to_be_visible()
    assert not [m for m in bob_in.drain() if m["type"] == "error"]

    # Kept by the server: loaded again, the page shows it on.
    await alice.reload()
    await expect(alice.locator("#presence-hidden")).to_be_visible()
    await sync(bob)
    assert not [p for p in bob_in.drain() if p["from"].bare == ALICE and p["type"] != "unavailable"]

    await alice.locator("#presence-button").click()
    await alice.get_by_label("Appear offline").uncheck()
    await bob_in.get(lambda p: p["type"] == "available" and p["from"].bare == ALICE)
    await expect(alice.locator("#presence-hidden")).to_be_hidden()


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_the_switch_and_the_header_fit_and_read_well(
    served: Harness, browser: Browser, size: str
) -> None:
    alice = await portal(browser, served.server.web.port, size, ALICE)
    await alice.locator("#presence-button").click()
    await alice.get_by_label("Appear offline").check()
    await expect(alice.locator("#presence-hidden")).to_be_visible()
    await check_screen(alice, f"status menu, appearing offline, {size}")
    assert await axe_violations(alice) == []
    await alice.keyboard.press("Escape")
    await check_screen(alice, f"header, appearing offline, {size}")
