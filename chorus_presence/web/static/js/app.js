// The portal: sign in, then the contact list with chats, or the settings pages.

import { Chats } from "./chat.js";
import { STATES, stateInfo } from "./chorus.js";
import { ContactList } from "./contacts.js";
import { $, announce, h, initials } from "./dom.js";
import { Session } from "./session.js";
import { DeviceSettings, PresenceSettings } from "./settings.js";
import { XmppClient } from "./xmpp.js";

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
    const client = new XmppClient();
    try {
      await client.connect({ url: socketUrl(), jid, password, resource: resourceName() });
      localStorage.setItem(REMEMBERED, jid);
      $("#login-password").value = "";
      await startPortal(client);
    } catch (failure) {
      if (client.online) await client.disconnect();
      error.textContent = failure.message || "Sign-in failed.";
      submit.disabled = false;
      submit.textContent = "Sign in";
      $("#login-password").select();
    }
  });
}

// Header popovers: disclosure buttons whose panels close on Escape or a click elsewhere.

function popover(button, panel, { onOpen } = {}) {
  const close = ({ restoreFocus = false } = {}) => {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (restoreFocus) button.focus();
  };
  const open = () => {
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    onOpen?.();
  };
  button.addEventListener("click", () => (panel.hidden ? open() : close()));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      close({ restoreFocus: true });
    }
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !panel.contains(event.target) && !button.contains(event.target)) close();
  });
  panel.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !panel.contains(event.relatedTarget) && event.relatedTarget !== button) {
      close();
    }
  });
  return { open, close };
}

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
      [...form.elements.state].find((radio) => radio.checked)?.focus();
    },
  });
  $("#presence-cancel").addEventListener("click", () => menu.close({ restoreFocus: true }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const state = [...form.elements.state].find((radio) => radio.checked)?.value || "available";
    const status = $("#presence-custom").value.trim();
    session.setOwnPresence(state, status);
    menu.close({ restoreFocus: true });
    announce(`Your presence is now ${stateInfo(state).label}${status ? `: ${status}` : ""}`);
  });
  const show = () => {
    const info = stateInfo(session.own.state);
    $("#presence-dot").className = `dot tone-${info.tone}`;
    $("#presence-label").textContent = info.label;
    $("#presence-text").textContent = session.own.status;
  };
  session.addEventListener("own-presence", show);
  show();
}

function setUpUserMenu(session) {
  const name = session.bare.split("@")[0];
  $("#user-name").textContent = name;
  $("#user-avatar").textContent = initials(name);
  $("#user-jid").textContent = session.bare;
  const menu = popover($("#user-button"), $("#user-menu"), {
    onOpen: () => $("#user-menu-settings").focus(),
  });
  $("#user-menu-settings").addEventListener("click", () => menu.close());
  $("#sign-out").addEventListener("click", async () => {
    await session.client.disconnect();
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

// Views, chosen by the address's fragment so the browser's back button works.

function route(devices) {
  const [section, page] = location.hash.replace(/^#\/?/, "").split("/");
  const settings = section === "settings";
  $("#contacts-view").hidden = settings;
  $("#settings-view").hidden = !settings;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === (settings ? "settings" : "contacts")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!settings) return;
  const current = page === "devices" ? "devices" : "presence";
  $("#settings-presence").hidden = current !== "presence";
  $("#settings-devices").hidden = current !== "devices";
  for (const link of document.querySelectorAll("[data-settings]")) {
    if (link.dataset.settings === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current === "devices") devices.show();
}

async function startPortal(client) {
  const session = new Session(client);
  const chats = new Chats(session);
  const contacts = new ContactList(session, { openChat: (jid) => chats.open(jid) });
  const presenceSettings = new PresenceSettings(session);
  const devices = new DeviceSettings(session);
  setUpPresenceMenu(session);
  setUpUserMenu(session);
  session.addEventListener("own-presence", () => devices.presenceChanged());
  session.addEventListener("subscribe", (event) => {
    announce(`${event.detail.jid} asks to see your presence status`);
  });
  client.addEventListener("disconnected", (event) => {
    if (event.detail.reason === "signed-out") return;
    const messages = {
      conflict: "This session was replaced by a newer one.",
      "system-shutdown": "The server is restarting.",
    };
    $("#connection-message").textContent =
      messages[event.detail.reason] || "The connection to the server was lost.";
    $("#connection-banner").hidden = false;
  });
  $("#reconnect").addEventListener("click", () => location.reload());
  await session.start();
  contacts.render();
  presenceSettings.render();
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  window.addEventListener("hashchange", () => route(devices));
  if (!location.hash) history.replaceState(null, "", "#/contacts");
  route(devices);
  $("#main").focus();
}

setUpLogin();
