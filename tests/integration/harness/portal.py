"""The portal in Chromium at a desk's and a phone's size: signing in, and measuring what a
person would see go wrong (anything past the window's edges, menus off screen, touch targets
too small, keyboard focus that cannot be seen, axe-core's serious and critical findings).

Set PORTAL_SCREENSHOTS to a directory to keep screenshots there (phone ones end in -phone).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import slixmpp
from playwright.async_api import Browser, Locator, Page, expect

from chorus_presence.services.call_routing import Device, RoutingConfig
from chorus_presence.storage.rosters import RosterChanges
from chorus_presence.xmpp.jid import JID
from tests.integration.harness.constants import DOMAIN, PASSWORD
from tests.integration.harness.server import link

if TYPE_CHECKING:
    from tests.integration.harness.server import Harness

SIZES = {
    "desktop": {"width": 1366, "height": 860},
    "phone": {"width": 390, "height": 844},
}
AXE = Path(__file__).parent.parent / "assets" / "axe.min.js"
# Apple's and WCAG 2.5.5's minimum size for something to tap.
TOUCH_PX = 44
TAB_LIMIT = 150


async def open_portal(browser: Browser, port: int, size: str) -> Page:
    """A fresh browser profile at `size` on the sign-in page; page.errors collects script errors.

    The page's Content-Security-Policy lets no script in that it does not serve, so the
    profile bypasses it for the axe-core the tests inject.
    """
    context = await browser.new_context(viewport=SIZES[size], bypass_csp=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"http://127.0.0.1:{port}/")
    return page


async def sign_in(page: Page, jid: str, password: str = PASSWORD) -> None:
    await page.get_by_label("Chorus address").fill(jid)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    await expect(page.locator("#presence-label")).to_have_text("Available")


async def portal(browser: Browser, port: int, size: str, jid: str) -> Page:
    page = await open_portal(browser, port, size)
    await sign_in(page, jid)
    return page


def phone(page: Page) -> bool:
    viewport = page.viewport_size
    return viewport is not None and viewport["width"] == SIZES["phone"]["width"]


async def screenshot(page: Page, name: str) -> None:
    directory = os.environ.get("PORTAL_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        suffix = "-phone" if phone(page) else ""
        await page.screenshot(path=str(Path(directory) / f"{name}{suffix}.png"), full_page=True)


# Measurements, each a list of what is wrong (empty when all is well)

_DESCRIBE = """
const describe = (node) => {
  const id = node.id ? `#${node.id}` : "";
  const classes = [...node.classList].map((name) => `.${name}`).join("");
  const text = (node.textContent || "").trim().slice(0, 40);
  return `<${node.tagName.toLowerCase()}${id}${classes}> "${text}"`;
};
const shown = (node) => {
  if (!node.checkVisibility({ visibilityProperty: true, opacityProperty: false })) return false;
  const box = node.getBoundingClientRect();
  return box.width > 1 || box.height > 1;
};
"""

_OVERFLOW = (
    "() => {"
    + _DESCRIBE
    + """
  const width = document.documentElement.clientWidth;
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > width) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} > ${width}`);
  }
  const controls = "button, a[href], input, select, textarea, summary";
  for (const node of document.querySelectorAll("body *")) {
    if (!shown(node)) continue;
    const box = node.getBoundingClientRect();
    let left = box.left;
    let right = box.right;
    for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "visible") continue;
      const frame = up.getBoundingClientRect();
      // A control cut off by a box that does not scroll cannot be used; one a box between
      // them scrolls out of view can be scrolled back.
      if ((overflow === "hidden" || overflow === "clip") && node.matches(controls)
          && (left < frame.left - 0.5 || right > frame.right + 0.5)) {
        problems.push(`${describe(node)} is cut off by ${describe(up)}`);
      }
      left = Math.max(left, frame.left);
      right = Math.min(right, frame.right);
    }
    if (right > left && (left < -0.5 || right > width + 0.5)) {
      const span = `${Math.round(box.left)}..${Math.round(box.right)}`;
      problems.push(`${describe(node)} spans ${span} of ${width}`);
    }
    // A box that scrolls sideways hides part of what it holds; only the chat tabs may.
    const style = getComputedStyle(node);
    const scrolls = ["auto", "scroll"].includes(style.overflowX);
    if (scrolls && !node.matches("input, textarea, select, .chat-tabs")
        && node.scrollWidth > node.clientWidth + 1) {
      const sizes = `${node.scrollWidth} > ${node.clientWidth}`;
      problems.push(`${describe(node)} scrolls sideways: ${sizes}`);
    }
  }
  return problems;
}"""
)

_MENUS = (
    "() => {"
    + _DESCRIBE
    + """
  const width = document.documentElement.clientWidth;
  const height = window.innerHeight;
  const problems = [];
  for (const menu of document.querySelectorAll(".popover")) {
    if (!shown(menu)) continue;
    const box = menu.getBoundingClientRect();
    if (box.left < 0 || box.top < 0 || box.right > width || box.bottom > height) {
      problems.push(`${describe(menu)} at ${Math.round(box.left)},${Math.round(box.top)}..` +
                    `${Math.round(box.right)},${Math.round(box.bottom)} in ${width}x${height}`);
    }
  }
  return problems;
}"""
)

_TARGETS = (
    "(minimum) => {"
    + _DESCRIBE
    + """
  const problems = [];
  const selector = "button, a[href], input, select, textarea, summary";
  for (const node of document.querySelectorAll(selector)) {
    if (!shown(node) || node.closest(".visually-hidden")) continue;
    let target = node;
    if (node.matches("input[type=checkbox], input[type=radio]")) {
      target = node.closest("label") || node;
    }
    const box = target.getBoundingClientRect();
    if (box.bottom <= 0) continue;  // the skip link, until it is focused
    if (box.width < minimum - 0.5 || box.height < minimum - 0.5) {
      problems.push(`${describe(node)} is ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return problems;
}"""
)


async def overflow(page: Page) -> list[str]:
    """Whatever reaches past the window's left or right edge, or is cut off sideways."""
    return await page.evaluate(_OVERFLOW)


async def menus_outside(page: Page) -> list[str]:
    """Open menus and dialogs that do not fit in the window."""
    return await page.evaluate(_MENUS)


async def small_targets(page: Page) -> list[str]:
    """Controls on screen smaller than a fingertip."""
    return await page.evaluate(_TARGETS, TOUCH_PX)


async def check_screen(page: Page, name: str) -> None:
    """The screen fits the window; on a phone, every control is big enough to tap."""
    problems = await overflow(page) + await menus_outside(page)
    if phone(page):
        problems += await small_targets(page)
    assert problems == [], f"{name}: {problems}"


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    return await page.evaluate(
        """async () => {
          const results = await axe.run(document, { resultTypes: ["violations"] });
          return results.violations
            .filter((found) => found.impact === "serious" || found.impact === "critical")
            .map((found) => ({
              id: found.id,
              impact: found.impact,
              help: found.help,
              nodes: found.nodes.slice(0, 5).map((node) => node.target.join(" ")),
            }));
        }"""
    )


_FOCUS = """(target) => {
  const node = document.activeElement;
  if (!node || node === document.body) return { here: false, visible: true, what: "body" };
  const style = getComputedStyle(node);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 1;
  const visible = outlined || style.boxShadow !== "none";
  const what = `<${node.tagName.toLowerCase()}${node.id ? "#" + node.id : ""}> ` +
    (node.getAttribute("aria-label") || node.textContent || "").trim().slice(0, 40);
  return { here: node === target, visible, what };
}"""


async def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> None:
    """Presses Tab (Shift+Tab) until `target` has the focus, checking at each stop that the
    focused control shows it."""
    handle = await target.element_handle()
    key = "Shift+Tab" if backwards else "Tab"
    seen: list[str] = []
    for _ in range(TAB_LIMIT):
        await page.keyboard.press(key)
        focus = await page.evaluate(_FOCUS, handle)
        assert focus["visible"], f"no visible focus on {focus['what']}"
        seen.append(focus["what"])
        if focus["here"]:
            return
    raise AssertionError(f"Tab never reached the control; it went through {seen}")


# A company's worth of contacts, with the longest names and texts the portal must fit


def jid(name: str) -> str:
    return f"{name}@{DOMAIN}"


LONG_NAME = "bartholomew.fitzgerald-montgomery.worthington-smythe"
LONG_GROUP = "Finance, legal and procurement (EMEA and Asia-Pacific)"
LONG_STATUS = (
    "Working from the Lisbon office until Thursday, then on leave: for anything urgent call the"
    " front desk, otherwise write and I will answer within the day. Tracking it in"
    " https://tickets.example.test/queues/facilities/requests/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)
MEETING = "Quarterly planning with the whole leadership team, back late in the afternoon"
# 64 characters, the longest a device name may be, and no space to break at.
LONG_DEVICE = "Reception-desk-phone-on-the-third-floor-beside-the-kitchen-door-"
LONG_MESSAGE = "Could you forward the signed contract? " + "x" * 120


@dataclass
class Company:
    """Alice's contacts: who is in which group, who shows what."""

    clients: dict[str, slixmpp.ClientXMPP] = field(default_factory=dict)


async def _group(harness: Harness, owner: str, contact: str, *groups: str) -> None:
    roster = await harness.ctx.rosters.roster(owner)
    item = dataclasses.replace(roster.items[jid(contact)], groups=groups)
    await harness.ctx.rosters.commit(RosterChanges(upserts=[(owner, item)]))


async def company(harness: Harness) -> Company:
    """Alice and her contacts, through the server's own services:

    - Engineering: bob (available), carol (away, a long status; also in Sales);
    - Sales: carol, gina (offline, last logged in two hours ago);
    - LONG_GROUP: LONG_NAME (do not disturb, in a meeting);
    - no group: dave (not logged in, presence automation on: shown as away);
    - not sharing their presence with alice: erin (asked, no answer yet), frank (sees alice);
    - henry asks to see alice's presence, with a long text; ivan is on her presence blocked
      list; mallory on her XEP-0191 block list; her devices have a 64-character name.
    """
    names = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "henry", "ivan", "mallory")
    for name in (*names, LONG_NAME):
        await harness.add_user(name)
    for name in ("bob", "carol", "dave", "gina", LONG_NAME):
        await link(harness, "alice", name)
    await _group(harness, "alice", "bob", "Engineering")
    await _group(harness, "alice", "carol", "Engineering", "Sales")
    await _group(harness, "alice", "gina", "Sales")
    await _group(harness, "alice", LONG_NAME, LONG_GROUP)
    subscriptions = harness.ctx.subscriptions
    alice = JID("alice", DOMAIN)
    await subscriptions.exchange(alice, JID("erin", DOMAIN), "subscribe")
    await subscriptions.exchange(JID("frank", DOMAIN), alice, "subscribe")
    await subscriptions.exchange(alice, JID("frank", DOMAIN), "subscribed")
    await subscriptions.exchange(JID("henry", DOMAIN), alice, "subscribe", LONG_STATUS)
    await harness.ctx.visibility.block("alice", jid("ivan"))
    await harness.ctx.visibility.set_away_when_offline("dave", True)
    now = time.time()
    await harness.ctx.repositories.last_activity.record("dave", now - 3600, "Gone home")
    await harness.ctx.repositories.last_activity.record("gina", now - 7200, None)
    await harness.ctx.call_routing.replace(
        "alice",
        RoutingConfig(
            enabled=True,
            default_device=LONG_DEVICE,
            devices=(Device(LONG_DEVICE, "desk-phone"), Device("Voicemail", "voicemail")),
            mapping={"busy": "Voicemail", "in-meeting": "Voicemail"},
        ),
    )
    people = Company()
    for name, show, status in (
        ("bob", None, None),
        ("carol", "away", LONG_STATUS),
        (LONG_NAME, "dnd", MEETING),
    ):
        client = await harness.login(name)
        client.send_presence(pshow=show, pstatus=status)
        people.clients[name] = client
    blocker = await harness.login("alice", resource="desk", plugins=("xep_0191",))
    await blocker.plugin["xep_0191"].block([jid("mallory")])
    people.clients["alice"] = blocker
    return people
