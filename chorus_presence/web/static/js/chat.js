// One chat panel per contact, as tabs. Messages go to the contact's bare JID so the server
// delivers them to every device the contact is logged in on, or answers that they are not.

import { BLOCKED_NOTE, lastSeenDetail } from "./contacts.js";
import { $, announce, h } from "./dom.js";
import { NS, child, x } from "./xml.js";

let counter = 0;

function errorText(stanza, name) {
  const error = child(stanza, "error");
  const condition = error
    ? [...error.children].find((node) => node.namespaceURI === NS.stanzas && node.localName !== "text")
    : null;
  const blocked = error && [...error.children].some((node) => node.localName === "blocked");
  // service-unavailable is also what a block looks like from outside, on purpose: the portal
  // shows it just as the server words it.
  if (condition?.localName === "service-unavailable") return `${name} is not logged in.`;
  if (blocked) return `you have put ${name} on your block list, so no messages go either way.`;
  const explanation = error ? child(error, "text", NS.stanzas)?.textContent : "";
  return explanation || `The server refused it (${condition?.localName || "error"}).`;
}

function timeNow() {
  return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * `onUnread(jid, unread)` hears when a chat gets messages not read yet, and when they are;
 * `onEmpty()` when the last chat is closed. `visible` says whether the chats are on screen
 * (on a phone they take turns with the contact list).
 */
export class Chats {
  constructor(session, { onUnread = () => {}, onEmpty = () => {} } = {}) {
    this.session = session;
    this.onUnread = onUnread;
    this.onEmpty = onEmpty;
    this.visible = true;
    this.chats = new Map();
    this.active = null;
    this.tabs = $("#chat-tabs");
    this.panels = $("#chat-panels");
    session.addEventListener("message", (event) => this.#received(event.detail));
    session.addEventListener("message-error", (event) => this.#failed(event.detail));
    session.addEventListener("presence", (event) => this.#presenceChanged(event.detail.jid));
    const all = () => {
      for (const jid of this.chats.keys()) this.#presenceChanged(jid);
    };
    // A name given in the roster, or one chosen by the contact, may arrive after the chat opened.
    const renamed = () => {
      for (const [jid, chat] of this.chats) {
        const name = this.name(jid);
        chat.tab.querySelector(".chat-tab-name").textContent = name;
        chat.panel.querySelector(".chat-title").textContent = name;
      }
    };
    session.addEventListener("roster", all);
    session.addEventListener("roster", renamed);
    session.addEventListener("blocked", all);
    session.addEventListener("last-seen", all);
    session.addEventListener("names", renamed);
    this.tabs.addEventListener("keydown", (event) => this.#tabKeys(event));
  }

  name(jid) {
    return this.session.nameOf(jid);
  }

  open(jid, { focus = true } = {}) {
    let chat = this.chats.get(jid);
    if (!chat) chat = this.#create(jid);
    this.#select(jid);
    if (focus) chat.input.focus();
    return chat;
  }

  /** Whether the chats are on screen: once they are, the one shown is read. */
  setVisible(visible) {
    this.visible = visible;
    if (visible && this.active) this.#read(this.active);
  }

  focusActive() {
    this.chats.get(this.active)?.input.focus();
  }

  #create(jid) {
    const key = `chat-${++counter}`;
    const name = this.name(jid);
    const tab = h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `${key}-tab`,
        class: "chat-tab",
        "aria-controls": `${key}-panel`,
        "aria-selected": "false",
        tabindex: "-1",
        dataset: { jid },
        onclick: () => this.open(jid),
      },
      h("span", { class: "dot", "aria-hidden": "true" }),
      h("span", { class: "chat-tab-name" }, name),
      h("span", { class: "unread", hidden: true }),
    );
    // A log, not a list: the role would take a list's meaning away from its items.
    const log = h("div", {
      class: "messages",
      role: "log",
      "aria-live": "polite",
      "aria-label": `Conversation with ${name}`,
    });
    const input = h("textarea", {
      id: `${key}-input`,
      rows: "2",
      maxlength: "4000",
      placeholder: "Write a message",
    });
    const form = h(
      "form",
      { class: "composer" },
      h("label", { for: `${key}-input`, class: "visually-hidden" }, `Message to ${name}`),
      input,
      h("button", { type: "submit", class: "button primary" }, "Send"),
    );
    const panel = h(
      "section",
      {
        role: "tabpanel",
        id: `${key}-panel`,
        class: "chat",
        "aria-labelledby": `${key}-tab`,
        dataset: { jid },
        hidden: true,
      },
      h(
        "div",
        { class: "chat-head" },
        h(
          "div",
          {},
          h("h3", { class: "chat-title" }, name),
          h(
            "p",
            { class: "chat-presence" },
            h("span", { class: "dot", "aria-hidden": "true" }),
            h("span", { class: "chat-state" }),
          ),
          h("p", { class: "chat-detail" }),
        ),
        h(
          "button",
          {
            type: "button",
            class: "button small quiet",
            "aria-label": `Close chat with ${name}`,
            onclick: () => this.#close(jid),
          },
          "Close",
        ),
      ),
      log,
      form,
    );
    input.addEventListener("keydown", (event) => {
      // Enter sends, as in every chat tool; Shift+Enter keeps a new line.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send(jid);
    });
    const chat = { jid, tab, panel, log, input, sent: new Map() };
    this.chats.set(jid, chat);
    this.tabs.append(tab);
    this.panels.append(panel);
    $("#chat-empty").hidden = true;
    this.#presenceChanged(jid);
    return chat;
  }

  #select(jid) {
    for (const [other, chat] of this.chats) {
      const selected = other === jid;
      chat.tab.setAttribute("aria-selected", String(selected));
      chat.tab.tabIndex = selected ? 0 : -1;
      chat.panel.hidden = !selected;
    }
    this.active = jid;
    if (this.visible) this.#read(jid);
  }

  #read(jid) {
    const chat = this.chats.get(jid);
    if (!chat || chat.tab.querySelector(".unread").hidden) return;
    chat.tab.querySelector(".unread").hidden = true;
    chat.tab.classList.remove("has-unread");
    this.onUnread(jid, false);
  }

  #close(jid) {
    const chat = this.chats.get(jid);
    if (!chat) return;
    const order = [...this.chats.keys()];
    chat.tab.remove();
    chat.panel.remove();
    this.chats.delete(jid);
    if (this.active === jid) {
      const next = order[order.indexOf(jid) + 1] || order[order.indexOf(jid) - 1];
      if (next && this.chats.has(next)) {
        this.#select(next);
        this.chats.get(next).tab.focus();
      } else {
        this.active = null;
        $("#chat-empty").hidden = false;
        this.onEmpty();
        const row = document.querySelector(`.contact[data-jid="${CSS.escape(jid)}"] .row-actions button`);
        row?.focus();
      }
    }
    this.onUnread(jid, false);
  }

  #tabKeys(event) {
    // The ARIA tabs pattern: arrows move between tabs, Home and End go to the ends.
    const tabs = [...this.tabs.querySelectorAll("[role=tab]")];
    const index = tabs.indexOf(document.activeElement);
    if (index === -1) return;
    const moves = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      Home: 0,
      End: tabs.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const target = tabs[(moves[event.key] + tabs.length) % tabs.length];
    this.#select(target.dataset.jid);
    target.focus();
  }

  #append(chat, { direction, body, id }) {
    const item = h(
      "div",
      { class: `message ${direction}` },
      h(
        "div",
        { class: "message-meta" },
        h("span", { class: "message-from" }, direction === "out" ? "You" : this.name(chat.jid)),
        h("time", {}, timeNow()),
      ),
      h("p", { class: "message-body" }, body),
    );
    chat.log.append(item);
    if (id) chat.sent.set(id, item);
    chat.log.scrollTop = chat.log.scrollHeight;
    return item;
  }

  #send(jid) {
    const chat = this.chats.get(jid);
    const body = chat.input.value.trim();
    if (!body) return;
    const bytes = new Uint8Array(6);
    crypto.getRandomValues(bytes);
    const id = `m-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    try {
      this.session.client.send(x("message", { to: jid, type: "chat", id }, x("body", {}, body)));
    } catch (error) {
      const item = this.#append(chat, { direction: "out", body });
      this.#markFailed(item, error.message);
      return;
    }
    chat.input.value = "";
    this.#append(chat, { direction: "out", body, id });
  }

  #received({ jid, body }) {
    const chat = this.chats.get(jid) || this.#create(jid);
    this.#append(chat, { direction: "in", body });
    if (this.active === null) this.#select(jid);
    if (this.active !== jid || !this.visible) {
      const unread = chat.tab.querySelector(".unread");
      const first = unread.hidden;
      unread.hidden = false;
      unread.textContent = "new";
      chat.tab.classList.add("has-unread");
      if (first) this.onUnread(jid, true);
      // The open conversation's log reads new messages out itself; others need a notice.
      announce(`New message from ${this.name(jid)}`);
    }
  }

  #failed({ jid, id, stanza }) {
    const chat = this.chats.get(jid);
    const item = chat?.sent.get(id);
    if (!item) return;
    const reason = errorText(stanza, this.name(jid));
    this.#markFailed(item, reason);
  }

  #markFailed(item, reason) {
    item.classList.add("failed");
    item.append(h("p", { class: "message-error" }, `Not delivered: ${reason}`));
  }

  #presenceChanged(jid) {
    const chat = this.chats.get(jid);
    if (!chat) return;
    const session = this.session;
    const presence = session.canSee(jid) ? session.presenceOf(jid) : null;
    let tone = presence ? presence.tone : "offline";
    let label = presence
      ? `${presence.label}${presence.status ? ` – ${presence.status}` : ""}`
      : session.canSee(jid)
        ? "Offline"
        : "Presence not shared";
    let detail = "";
    if (session.isBlocked(jid)) {
      tone = "blocked";
      label = BLOCKED_NOTE;
    } else if (!presence && !session.canSee(jid)) {
      tone = "unknown";
    } else {
      detail = lastSeenDetail(session, jid, presence);
    }
    for (const dot of [chat.tab.querySelector(".dot"), chat.panel.querySelector(".dot")]) {
      dot.className = `dot tone-${tone}`;
    }
    chat.panel.querySelector(".chat-state").textContent = label;
    chat.panel.querySelector(".chat-detail").textContent = detail;
  }
}
