// The contact list: contacts who share their presence, by roster group and by state, then
// those who do not in a section of their own; a search box; adding and removing contacts.
// Each row shows the contact's name (the user's own name for them, else the one they chose)
// with the address beneath it.

import { addContact, removeContact } from "./chorus.js";
import { $, announce, flash, h, initials } from "./dom.js";
import { ago, since, until } from "./times.js";
import { bareJid } from "./xmpp.js";

// Available first, then those logged in but busy, then away, then those not logged in.
const STATE_ORDER = {
  available: 0,
  "in-meeting": 1,
  busy: 1,
  dnd: 1,
  brb: 2,
  away: 2,
  offline: 3,
};
const NOT_LOGGED_IN = 4;
const NOT_SHARING = "\u0001not-sharing";
const UNGROUPED = "\u0001ungrouped";
// The two block lists, told apart in the same words everywhere in the portal.
export const BLOCKED_NOTE = "Blocked: no messages at all, either way";
export const HIDDEN_NOTE = "Cannot see your presence status (messages still reach you)";
// Rows the list redraws as time passes ("yesterday at ...").
const REDRAW_MS = 60_000;

function describe(session, item) {
  if (session.isBlocked(item.jid)) {
    return { label: "Blocked", tone: "blocked", status: "", note: BLOCKED_NOTE };
  }
  if (!session.canSee(item.jid)) {
    const note = item.ask ? "Waiting for them to accept your request" : "Not sharing their presence with you";
    return { label: "Presence not shared", tone: "unknown", status: "", note };
  }
  // Sharing theirs does not mean seeing mine: the presence blocked list says they do not.
  const note = session.visibility.blocked.includes(item.jid) ? HIDDEN_NOTE : "";
  const presence = session.presenceOf(item.jid);
  const detail = lastSeenDetail(session, item.jid, presence);
  if (!presence) return { label: "Offline", tone: "offline", status: "", note, detail };
  return { ...presence, note, detail };
}

/**
 * "Last seen 2 h ago" for a contact not logged in (XEP-0012, or the idle time of the "Not
 * logged in" presence: the same instant), "Away since 14:05" for one logged in whose state is
 * not Available (XEP-0319 idle time, else when this page saw it begin); nothing at all while
 * the user hides their own last seen.
 */
export function lastSeenDetail(session, jid, presence) {
  if (!session.showsLastSeen) return "";
  if (!presence || presence.state === "offline") {
    const seen = session.lastSeen.get(jid) || presence?.since;
    return seen ? `Last seen ${ago(seen)}` : "";
  }
  if (presence.state !== "available" && presence.since) {
    return `${presence.label} ${since(presence.since)}`;
  }
  return "";
}

function rank(session, item) {
  const presence = session.presenceOf(item.jid);
  return presence ? STATE_ORDER[presence.state] ?? NOT_LOGGED_IN : NOT_LOGGED_IN;
}

export class ContactList {
  constructor(session, { openChat }) {
    this.session = session;
    this.openChat = openChat;
    // section key -> {node, list, rows: Map(jid -> row)}
    this.sections = new Map();
    this.unread = new Set();
    this.expanded = new Set();
    this.container = $("#contact-groups");
    this.search = $("#contact-search");
    session.addEventListener("roster", () => this.render());
    session.addEventListener("blocked", () => this.render());
    session.addEventListener("visibility", () => this.render());
    session.addEventListener("last-seen", () => this.render());
    session.addEventListener("names", () => this.render());
    session.addEventListener("connection", () => this.#showConnection());
    session.addEventListener("presence", (event) => this.#presenceChanged(event.detail));
    this.search.addEventListener("input", () => this.#filter());
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.search.value) {
        event.stopPropagation();
        this.search.value = "";
        this.#filter();
      }
    });
    $("#add-contact-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#add();
    });
    setInterval(() => this.render(), REDRAW_MS);
  }

  /** Marks a contact's rows while a chat with them has messages not read yet. */
  markUnread(jid, unread) {
    if (unread) this.unread.add(jid);
    else this.unread.delete(jid);
    this.render();
  }

  render() {
    const focused = document.activeElement;
    const session = this.session;
    const items = [...session.roster.values()];
    const name = (item) => session.nameOf(item.jid);
    const byName = (a, b) => name(a).localeCompare(name(b));
    const sharing = items.filter((item) => session.canSee(item.jid) && !session.isBlocked(item.jid));
    const others = items.filter((item) => !sharing.includes(item));
    const groups = new Map();
    for (const item of sharing) {
      for (const group of item.groups.length ? item.groups : [UNGROUPED]) {
        if (!groups.has(group)) groups.set(group, []);
        groups.get(group).push(item);
      }
    }
    const named = [...groups.keys()].filter((key) => key !== UNGROUPED).sort((a, b) => a.localeCompare(b));
    const wanted = named.map((key) => ({ key, title: key, items: groups.get(key) }));
    if (groups.has(UNGROUPED)) {
      wanted.push({
        key: UNGROUPED,
        title: named.length ? "Other contacts" : "Sharing their presence with you",
        items: groups.get(UNGROUPED),
      });
    }
    for (const section of wanted) {
      section.items.sort((a, b) => rank(session, a) - rank(session, b) || byName(a, b));
      const online = section.items.filter((item) => session.isOnline(item.jid)).length;
      section.count = `${online} of ${section.items.length} online`;
    }
    if (others.length) {
      wanted.push({
        key: NOT_SHARING,
        title: "Not sharing their presence with you",
        items: others.sort(byName),
        count: String(others.length),
      });
    }

    for (const [key, section] of this.sections) {
      if (!wanted.some((entry) => entry.key === key)) {
        section.node.remove();
        this.sections.delete(key);
      }
    }
    let previous = null;
    for (const entry of wanted) {
      const section = this.sections.get(entry.key) || this.#section(entry.key);
      section.node.querySelector(".group-title").textContent = entry.title;
      section.node.querySelector(".group-count").textContent = entry.count;
      this.#place(this.container, section.node, previous);
      previous = section.node;
      this.#fill(section, entry.items);
    }

    $("#contacts-empty").hidden = items.length > 0;
    const online = sharing.filter((item) => session.isOnline(item.jid)).length;
    $("#contacts-count").textContent = sharing.length ? `${online} of ${sharing.length} online` : "";
    this.#filter();
    // A row that moved took keyboard focus with it, which belongs where it was.
    if (focused && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
  }

  #section(key) {
    const id = `group-${this.sections.size + 1}-${Math.random().toString(36).slice(2, 8)}`;
    const list = h("ul", { class: "contact-list", "aria-labelledby": id });
    const node = h(
      "div",
      { class: "contact-group", dataset: { group: key === NOT_SHARING ? "not-sharing" : key } },
      h(
        "h2",
        { class: "group-head", id },
        h("span", { class: "group-title" }),
        h("span", { class: "group-count" }),
      ),
      list,
    );
    const section = { node, list, rows: new Map() };
    this.sections.set(key, section);
    return section;
  }

  /** Puts `node` right after `previous` (first when null), moving it only if it is elsewhere. */
  #place(parent, node, previous) {
    const expected = previous ? previous.nextElementSibling : parent.firstElementChild;
    if (expected === node) return;
    if (previous) previous.after(node);
    else parent.prepend(node);
  }

  #fill(section, items) {
    for (const [jid, row] of section.rows) {
      if (!items.some((item) => item.jid === jid)) {
        row.remove();
        section.rows.delete(jid);
      }
    }
    let previous = null;
    for (const item of items) {
      let row = section.rows.get(item.jid);
      if (!row) {
        row = this.#row(item);
        section.rows.set(item.jid, row);
      }
      this.#place(section.list, row, previous);
      this.#update(row, item);
      previous = row;
    }
  }

  #filter() {
    const words = this.search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const section of this.sections.values()) {
      let visible = 0;
      for (const row of section.rows.values()) {
        const matches = words.every((word) => row.dataset.search.includes(word));
        row.hidden = !matches;
        if (matches) visible += 1;
      }
      section.node.hidden = visible === 0;
      shown += visible;
    }
    const none = $("#contacts-no-match");
    const total = this.session.roster.size;
    none.hidden = !words.length || shown > 0 || total === 0;
    none.textContent = `No contact matches “${this.search.value.trim()}”.`;
  }

  #showConnection() {
    const stale = !this.session.connected;
    $(".contacts-panel").classList.toggle("is-stale", stale);
    $("#contacts-stale").textContent = stale
      ? "Not up to date: the connection to the server is lost. Presence shown is as it was."
      : "";
    if (!stale) this.render();
  }

  #presenceChanged({ jid, previous, current, live }) {
    this.render();
    const item = this.session.roster.get(jid);
    if (!item || !live) return;
    const name = this.session.nameOf(jid);
    const before = previous ? `${previous.label}|${previous.status}` : "offline";
    const after = current ? `${current.label}|${current.status}` : "offline";
    if (before === after) return;
    if (!current) announce(`${name} is now offline`);
    else announce(`${name} is now ${current.label}${current.status ? `: ${current.status}` : ""}`);
  }

  #row(item) {
    const row = h("li", { class: "contact", dataset: { jid: item.jid } });
    const main = h(
      "button",
      {
        type: "button",
        class: "contact-main",
        "aria-expanded": "false",
        onclick: () => {
          // Long status texts are cut to two lines; this shows all of it, and hides it again.
          const open = !this.expanded.has(item.jid);
          if (open) this.expanded.add(item.jid);
          else this.expanded.delete(item.jid);
          this.render();
        },
      },
      h(
        "span",
        { class: "contact-name-line" },
        h("span", { class: "contact-name" }),
        h("span", { class: "contact-jid" }),
      ),
      h(
        "span",
        { class: "contact-presence" },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "contact-state" }),
        h("span", { class: "contact-status" }),
      ),
      h("span", { class: "contact-detail" }),
      h("span", { class: "contact-note" }),
    );
    row.append(
      h("span", { class: "avatar", "aria-hidden": "true" }),
      main,
      h("div", { class: "row-actions" }),
    );
    this.#showActions(row, item.jid);
    return row;
  }

  #showActions(row, jid) {
    const name = this.session.nameOf(jid);
    const actions = row.querySelector(".row-actions");
    actions.replaceChildren(
      h(
        "button",
        {
          type: "button",
          class: "button small",
          "aria-label": `Chat with ${name}`,
          onclick: () => this.openChat(jid),
        },
        "Chat",
        h("span", { class: "unread", hidden: true }, "new"),
      ),
      h(
        "button",
        {
          type: "button",
          class: "button small quiet",
          "aria-label": `Remove ${name}`,
          onclick: () => this.#confirmRemove(row, jid),
        },
        "Remove",
      ),
    );
  }

  #confirmRemove(row, jid) {
    const name = this.session.nameOf(jid);
    const actions = row.querySelector(".row-actions");
    const cancel = h(
      "button",
      {
        type: "button",
        class: "button small",
        onclick: () => {
          this.#showActions(row, jid);
          this.render();
          row.querySelector(".row-actions button:last-child").focus();
        },
      },
      "Cancel",
    );
    const confirm = h(
      "button",
      {
        type: "button",
        class: "button small danger",
        "aria-label": `Confirm removing ${name}`,
        onclick: async () => {
          confirm.disabled = true;
          try {
            await removeContact(this.session.client, jid);
            announce(`${name} removed from your contacts`);
            $("#add-contact-jid").focus();
          } catch (error) {
            confirm.disabled = false;
            announce(`Could not remove ${name}: ${error.message}`);
          }
        },
      },
      "Remove",
    );
    actions.replaceChildren(h("span", { class: "confirm-text" }, `Remove ${name}?`), confirm, cancel);
    cancel.focus();
  }

  #update(row, item) {
    const shown = describe(this.session, item);
    const name = this.session.nameOf(item.jid);
    row.querySelector(".avatar").textContent = initials(name);
    row.querySelector(".contact-name").textContent = name;
    row.querySelector(".contact-jid").textContent = item.jid;
    row.querySelector(".dot").className = `dot tone-${shown.tone}`;
    // A state that clears itself says when: "Busy until 14:30".
    const ends = shown.until ? ` ${until(shown.until)}` : "";
    row.querySelector(".contact-state").textContent = `${shown.label}${ends}`;
    const status = row.querySelector(".contact-status");
    status.textContent = shown.status;
    const main = row.querySelector(".contact-main");
    // The pointer shows all of a long text on hover; a tap or a key press expands the row.
    if (shown.status) main.title = `${shown.label}: ${shown.status}`;
    else main.removeAttribute("title");
    const expanded = this.expanded.has(item.jid);
    main.setAttribute("aria-expanded", String(expanded));
    row.classList.toggle("expanded", expanded);
    row.querySelector(".contact-detail").textContent = shown.detail || "";
    row.querySelector(".contact-note").textContent = shown.note;
    row.dataset.tone = shown.tone;
    row.dataset.search = [name, item.jid, shown.label, shown.status, ...item.groups].join(" ").toLowerCase();
    const unread = row.querySelector(".unread");
    if (unread) {
      unread.hidden = !this.unread.has(item.jid);
      const chat = unread.closest("button");
      chat.setAttribute("aria-label", `Chat with ${name}${unread.hidden ? "" : " (new message)"}`);
    }
  }

  async #add() {
    const input = $("#add-contact-jid");
    const result = $("#add-contact-result");
    const jid = bareJid(input.value.trim());
    if (!/^[^@\s]+@[^@\s]+$/.test(jid)) {
      flash(result, "Enter a full address, such as bob@example.com.", "error");
      input.focus();
      return;
    }
    if (jid === this.session.bare) {
      flash(result, "That is your own address.", "error");
      return;
    }
    if (this.session.roster.has(jid) && this.session.canSee(jid)) {
      flash(result, `${jid} is already in your contacts.`, "error");
      return;
    }
    try {
      await addContact(this.session.client, jid, this.session.names.get(this.session.bare));
      input.value = "";
      flash(result, `Asked ${jid} to share their presence with you.`);
    } catch (error) {
      flash(result, `Could not add ${jid}: ${error.message}`, "error");
    }
  }
}
