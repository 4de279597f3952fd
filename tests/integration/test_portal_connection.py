"""The portal's connection, visible and recovering: a banner within seconds of the server
stopping, the contact list marked out of date meanwhile, and a new sign-in by itself once the
server is back, on the same port, without asking for the password, after which everything is
current again. Being signed out by the server is not a lost connection: it stays signed out.

The server stops two ways: an orderly shutdown and restart of the in-process server, and a
`chorus-presence serve` process killed with SIGKILL and started again. Display names, which
nothing pushes, are read again over the new connection.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from chorus_presence.admin.presence import session_kick
from tests.integration.harness import (
    PASSWORD,
    Harness,
    Inbox,
    ServerProcess,
    cli,
    link,
    quiet_slixmpp,
    start_server,
    write_config,
)
from tests.integration.harness.portal import check_screen, jid, portal, screenshot

ALICE, BOB = jid("alice"), jid("bob")
SIZES = pytest.mark.parametrize("size", ["desktop", "phone"])
# What the issue asks: the banner within 5 s of the server stopping.
NOTICE_MS = 5_000
# Long enough for the longest wait between two tries (30 s) and a sign-in.
BACK_MS = 40_000

expect.set_options(timeout=10_000)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path, tls_files: tuple[Path, Path]) -> Path:
    """The portal on a port of its own, which a restarted server takes again."""
    quiet_slixmpp()
    return write_config(tmp_path, tls_files, web={"enabled": True, "port": free_port()})


@pytest.fixture
async def server(config: Path, tls_files: tuple[Path, Path]) -> AsyncIterator[Harness]:
    running = await start_server(config, tls_files[0])
    try:
        yield running
    finally:
        await running.close()


def away_from(sender: str, status: str):
    return lambda s: (
        s.name == "presence"
        and s["from"].bare == sender
        and s["type"] == "dnd"
        and s["status"] == status
    )


async def lost(page: Page) -> None:
    """The banner says the connection is lost and the contact list is marked out of date."""
    banner = page.locator("#connection-banner")
    await expect(banner).to_be_visible(timeout=NOTICE_MS)
    await expect(banner).to_contain_text("The connection to the server is lost.")
    await expect(page.locator(".contacts-panel")).to_have_class("panel contacts-panel is-stale")
    await expect(page.locator("#contacts-stale")).to_have_text(
        "Not up to date: the connection to the server is lost. Presence shown is as it was."
    )


async def back(page: Page) -> None:
    await expect(page.locator("#connection-banner")).to_be_hidden(timeout=BACK_MS)
    await expect(page.locator("#contacts-stale")).to_have_text("")
    await expect(page.locator(".contacts-panel")).to_have_class("panel contacts-panel")


async def nothing_stored_but_tokens(page: Page) -> None:
    stored = await page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert PASSWORD not in stored


@SIZES
async def test_the_portal_comes_back_after_a_restart(
    server: Harness, browser: Browser, size: str
) -> None:
    for name in ("alice", "bob"):
        await server.add_user(name)
    await link(server, "alice", "bob")
    bob = await server.login("bob")
    bob.send_presence(pstatus="Before the restart")
    alice = await portal(browser, server.server.web.port, size, ALICE)
    row = alice.locator(f".contact[data-jid='{BOB}']")
    await expect(row.locator(".contact-status")).to_have_text("Before the restart")
    await alice.locator("#presence-button").click()
    await alice.get_by_role("dialog").get_by_label("Busy", exact=True).check()
    await alice.get_by_label("Custom status text").fill("Focus time")
    await alice.get_by_role("button", name="Set status").click()

    async def while_stopped() -> None:
        await lost(alice)
        await check_screen(alice, "connection lost")
        await screenshot(alice, "connection-lost")

    await server.restart(while_stopped=while_stopped)
    bob = server.make_client("bob")
    bob_in = Inbox(bob)
    assert await server.connect(bob) == "session_start"
    bob.send_presence(pstatus="After the restart")

    await back(alice)
    # Signed in again by itself, with the state Alice had chosen, and seeing what is new.
    await bob_in.expect(away_from(ALICE, "Focus time"), "alice's presence, as she left it")
    await expect(row.locator(".contact-status")).to_have_text("After the restart")
    await expect(alice.locator("#presence-label")).to_have_text("Busy")
    await expect(alice.get_by_label("Password", exact=True)).to_be_hidden()
    await nothing_stored_but_tokens(alice)
    assert alice.errors == []  # type: ignore[attr-defined]


async def test_names_are_read_again_over_the_new_connection(
    server: Harness, browser: Browser
) -> None:
    for name in ("alice", "bob"):
        await server.add_user(name)
    await link(server, "alice", "bob")
    names = server.ctx.repositories.display_names
    await names.set("bob", "Bob Before")
    alice = await portal(browser, server.server.web.port, "desktop", ALICE)
    name = alice.locator(f".contact[data-jid='{BOB}'] .contact-name")
    await expect(name).to_have_text("Bob Before")
    # vCard4 has no pushes: a name changed meanwhile is read when the portal reconnects.
    await names.set("bob", "Bob After")
    await server.restart(while_stopped=lambda: lost(alice))
    await back(alice)
    await expect(name).to_have_text("Bob After")
    assert alice.errors == []  # type: ignore[attr-defined]


@SIZES
async def test_a_killed_server_process_is_noticed_and_the_portal_comes_back(
    config: Path, tls_files: tuple[Path, Path], browser: Browser, size: str
) -> None:
    process = await ServerProcess.start(config)
    try:
        for name in ("alice", "bob"):
            run = await cli(config, "user", "add", name, "--password-stdin", stdin=PASSWORD)
            assert run.code == 0, run
        web_port = tomllib.loads(config.read_text())["web"]["port"]
        alice = await portal(browser, web_port, size, ALICE)
        await alice.get_by_label("Add a contact").fill(BOB)
        await alice.get_by_role("button", name="Add", exact=True).click()
        row = alice.locator(f".contact[data-jid='{BOB}']")
        await expect(row.locator(".contact-note")).to_have_text(
            "Waiting for them to accept your request"
        )

        await process.stop()
        await lost(alice)
        process = await ServerProcess.start(config)
        await back(alice)

        # Current again: a request answered while it was away shows at once.
        harness = Harness(process, tls_files[0])
        try:
            bob = await harness.login("bob")
            bob.send_presence(pto=ALICE, ptype="subscribed")
            bob.send_presence()
            await expect(row.locator(".contact-state")).to_have_text("Available")
        finally:
            await harness.close()
        assert alice.errors == []  # type: ignore[attr-defined]
    finally:
        await process.stop()


@SIZES
async def test_signed_out_by_the_server_it_stays_signed_out(
    server: Harness, browser: Browser, size: str
) -> None:
    await server.add_user("alice")
    alice = await portal(browser, server.server.web.port, size, ALICE)
    await session_kick(server.ctx, ALICE)
    banner = alice.locator("#connection-banner")
    await expect(banner).to_be_visible(timeout=NOTICE_MS)
    await expect(banner).to_have_attribute("data-state", "ended")
    await expect(alice.locator("#connection-message")).to_have_text(
        "You were signed out by the server."
    )
    await expect(alice.get_by_role("button", name="Sign in again")).to_be_visible()
    await check_screen(alice, "signed out")
    # The list stays as it was, marked out of date: nothing comes to bring it up to date.
    await expect(alice.locator("#contacts-stale")).not_to_have_text("")


async def test_tries_wait_longer_each_time_up_to_a_cap(server: Harness, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{server.server.web.port}/")
    delays = await page.evaluate(
        """async () => {
          const { retryDelay } = await import("/js/connection.js");
          const range = [...Array(12).keys()];
          return {
            low: range.map((attempt) => retryDelay(attempt, () => 0)),
            high: range.map((attempt) => retryDelay(attempt, () => 1)),
            spread: new Set(range.map(() => retryDelay(4))).size,
          };
        }"""
    )
    ceilings = [min(30_000, 1000 * 2**attempt) for attempt in range(12)]
    assert delays["high"] == ceilings
    assert delays["low"] == [ceiling / 2 for ceiling in ceilings]
    # Jitter: portals dropped together do not all come back in the same instant.
    assert delays["spread"] > 1
