// The portal: sign in, then the contact list with chats, or the settings pages.

import { AppearOffline } from "./appearoffline.js";
import { BlockListSettings } from "./blocking.js";
import { SignedInBrowsers, signOut } from "./browsers.js";
import { Chats } from "./chat.js";
import { STATES, stateInfo } from "./chorus.js";
import { Connection } from "./connection.js";
import { ContactList } from "./contacts.js";
import { $, announce, h, initials } from "./dom.js";
import { LastSeenSettings } from "./lastseen.js";
import { popover } from "./popover.js";
import { PrioritySettings } from "./priority.js";
import { QuietHoursSettings } from "./quiethours.js";
import { Router } from "./router.js";
import { Session } from "./session.js";
import { DeviceSettings, PresenceSettings, ProfileSettings } from "./settings.js";
import { SignIn } from "./signin.js";
import { until } from "./times.js";
import { TimeZoneSettings } from "./timezone.js";

const REMEMBERED = "chorus-portal-address";

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/xmpp-websocket`;
}

function resourceName() {
  const bytes = new Uint8Array(3);
  crypto.getRandomValues(bytes);
  return `portal-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// Sign in

/**
 * Signs in with `signIn` and opens the portal. A lost connection signs in again the same way
 * (with the token by then) and as the same resource, so contacts see the same session back.
 */
async function enter(signIn) {
  const resource = resourceName();
  const client = await signIn.connect(socketUrl(), resource);
  try {
    await startPortal(client, signIn, () => signIn.connect(socketUrl(), resource));
  } catch (failure) {
    if (client.online) await client.disconnect();
    throw failure;
  }
}

/** Signed in before, in this tab or kept in this browser: in again without the password. */
async function resume() {
  const saved = SignIn.saved();
  if (!saved) return;
  const submit = $("#login-submit");
  $("#login-jid").value = saved.jid;
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    await enter(saved);
  } catch (failure) {
    $("#login-error").textContent = failure.message || "Sign-in failed.";
    submit.disabled = false;
    submit.textContent = "Sign in";
    $("#login-password").focus();
  }
}

function setUpLogin() {
  const form = $("#login-form");
  const address = $("#login-jid");
  address.value = localStorage.getItem(REMEMBERED) || "";
  (address.value ? $("#login-password") : address).focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#login-error");
    const submit = $("#login-submit");
    const jid = address.value.trim();
    const password = $("#login-password").value;
    error.textContent = "";
    if (!jid || !password) {
      error.textContent = "Enter your Chorus address and password.";
      (jid ? $("#login-password") : address).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      await enter(SignIn.withPassword(jid, password, $("#login-keep").checked));
      localStorage.setItem(REMEMBERED, jid);
      $("#login-password").value = "";
    } catch (failure) {
      error.textContent = failure.message || "Sign-in failed.";
      submit.disabled = false;
      submit.textContent = "Sign in";
      $("#login-password").select();
    }
  });
}

// Header menus

function setUpPresenceMenu(session) {
  const options = $("#presence-options");
  options.replaceChildren(
    ...STATES.map((state) =>
      h(
        "label",
        { class: "state-option" },
        h("input", { type: "radio", name: "state", value: state.id }),
        h("span", { class: `dot tone-${state.tone}`, "aria-hidden": "true" }),
        state.label,
      ),
    ),
  );
  const form = $("#presence-form");
  const menu = popover($("#presence-button"), $("#presence-menu"), {
    onOpen: () => {
      for (const radio of form.elements.state) radio.checked = radio.value === session.own.state;
      $("#presence-custom").value = session.own.status;
      $("#presence-clear").value = "";
      [...form.elements.state].find((radio) => radio.checked)?.focus();
    },
  });
  $("#presence-cancel").addEventListener("click", () => menu.close({ restoreFocus: true }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const state = [...form.elements.state].find((radio) => radio.checked)?.value || "available";
    const status = $("#presence-custom").value.trim();
    session.setOwnPresence(state, status, $("#presence-clear").value || null);
    menu.close({ restoreFocus: true });
    announce(`Your presence is now ${stateInfo(state).label}${status ? `: ${status}` : ""}`);
  });
  const show = () => {
    const info = stateInfo(session.own.state);
    $("#presence-dot").className = `dot tone-${info.tone}`;
    $("#presence-label").textContent = info.label;
    const ends = session.own.until ? until(session.own.until) : "";
    $("#presence-text").textContent = [session.own.status, ends].filter(Boolean).join(" · ");
  };
  session.addEventListener("own-presence", show);
  show();
}

function setUpUserMenu(session, signIn) {
  const showName = () => {
    const name = session.nameOf(session.bare);
    $("#user-name").textContent = name;
    $("#user-avatar").textContent = initials(name);
  };
  showName();
  session.addEventListener("names", showName);
  $("#user-jid").textContent = session.bare;
  const menu = popover($("#user-button"), $("#user-menu"), {
    onOpen: () => $("#user-menu-settings").focus(),
  });
  $("#user-menu-settings").addEventListener("click", () => menu.close());
  $("#sign-out").addEventListener("click", async () => {
    await signOut(session, signIn);
    // A fresh page is the surest way to leave nothing of the session behind.
    location.reload();
  });
  const badges = () => {
    const pending = session.pendingCount;
    const label = `${pending} pending presence status ${pending === 1 ? "request" : "requests"}`;
    for (const badge of [$("#user-badge"), $("#settings-badge")]) {
      badge.hidden = pending === 0;
      badge.textContent = String(pending);
      badge.setAttribute("aria-label", label);
    }
    document.title = pending ? `(${pending}) Chorus Presence` : "Chorus Presence";
  };
  session.addEventListener("visibility", badges);
  session.addEventListener("pending-count", badges);
  badges();
}

async function startPortal(client, signIn, signInAgain) {
  const session = new Session(client);
  const router = new Router();
  const chats = new Chats(session, {
    onUnread: (jid, unread) => contacts.markUnread(jid, unread),
    onEmpty: () => router.leaveChat(),
  });
  const contacts = new ContactList(session, {
    openChat: (jid) => {
      chats.open(jid, { focus: false });
      router.showChat(() => chats.focusActive());
    },
  });
  router.onChats = (visible) => chats.setVisible(visible);
  const presenceSettings = new PresenceSettings(session);
  const devices = new DeviceSettings(session);
  new BlockListSettings(session);
  router.onSettings.devices = () => devices.show();
  const profile = new ProfileSettings(session);
  router.onSettings.profile = () => profile.show();
  const browsers = new SignedInBrowsers(session, signIn);
  const timeZone = new TimeZoneSettings(session);
  new AppearOffline(session);
  const quietHours = new QuietHoursSettings(session);
  const priority = new PrioritySettings(session);
  const lastSeen = new LastSeenSettings(session);
  router.onSettings.browsers = () => browsers.show();
  session.addEventListener("connection", (event) => {
    // Signed out by the server (revoked, or the account disabled): the token is useless now.
    if (!session.connected && event.detail?.reason === "not-authorized") signIn.forget();
  });
  new Connection(session, signInAgain);
  setUpPresenceMenu(session);
  setUpUserMenu(session, signIn);
  session.addEventListener("own-presence", () => devices.presenceChanged());
  session.addEventListener("connection", () => {
    // What another session changed meanwhile shows now, unless it would undo unsaved edits.
    if (session.connected && !$("#settings-devices").hidden) devices.show();
  });
  session.addEventListener("subscribe", (event) => {
    const { jid } = event.detail;
    const name = session.knownName(jid);
    announce(`${name ? `${name} (${jid})` : jid} asks to see your presence status`);
  });
  await session.start();
  contacts.render();
  presenceSettings.render();
  // Not waited for: the contact list does not need it; a lost connection leaves it unread.
  timeZone.load().catch(() => {});
  quietHours.load().catch(() => {});
  priority.load().catch(() => {});
  lastSeen.load().catch(() => {});
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  router.start();
  $("#main").focus();
}

setUpLogin();
resume();
