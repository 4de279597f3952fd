// The contact list: each contact's live presence, adding and removing contacts.

import { addContact, removeContact } from "./chorus.js";
import { $, announce, displayName, flash, h, initials } from "./dom.js";
import { bareJid } from "./xmpp.js";

function describe(session, item) {
  const presence = session.presenceOf(item.jid);
  if (presence) return { ...presence, note: "" };
  const offline = { label: "Offline", tone: "offline", status: "" };
  if (session.canSee(item.jid)) return { ...offline, note: "" };
  if (item.ask) return { ...offline, note: "Waiting for them to accept your request" };
  return { ...offline, note: "Not sharing their presence with you" };
}

export class ContactList {
  constructor(session, { openChat }) {
    this.session = session;
    this.openChat = openChat;
    this.rows = new Map();
    this.list = $("#contact-list");
    session.addEventListener("roster", () => this.render());
    session.addEventListener("presence", (event) => this.#presenceChanged(event.detail));
    $("#add-contact-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#add();
    });
  }

  render() {
    const items = [...this.session.roster.values()].sort((a, b) =>
      displayName(a.jid, a.name).localeCompare(displayName(b.jid, b.name)),
    );
    for (const [jid, row] of this.rows) {
      if (!this.session.roster.has(jid)) {
        row.remove();
        this.rows.delete(jid);
      }
    }
    let previous = null;
    for (const item of items) {
      let row = this.rows.get(item.jid);
      if (!row) {
        row = this.#row(item);
        this.rows.set(item.jid, row);
      }
      // Only rows out of place move: moving a row would take keyboard focus from its buttons.
      const expected = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (expected !== row) {
        if (previous) previous.after(row);
        else this.list.prepend(row);
      }
      this.#update(row, item);
      previous = row;
    }
    $("#contacts-empty").hidden = items.length > 0;
    const online = items.filter((item) => this.session.presenceOf(item.jid)).length;
    $("#contacts-count").textContent = items.length ? `${online} of ${items.length} online` : "";
  }

  #presenceChanged({ jid, previous, current }) {
    this.render();
    const item = this.session.roster.get(jid);
    if (!item) return;
    const name = displayName(jid, item.name);
    const before = previous ? `${previous.label}|${previous.status}` : "offline";
    const after = current ? `${current.label}|${current.status}` : "offline";
    if (before === after) return;
    if (!current) announce(`${name} is now offline`);
    else announce(`${name} is now ${current.label}${current.status ? `: ${current.status}` : ""}`);
  }

  #row(item) {
    const row = h("li", { class: "contact", dataset: { jid: item.jid } });
    row.append(
      h("span", { class: "avatar", "aria-hidden": "true" }),
      h(
        "div",
        { class: "contact-main" },
        h(
          "div",
          { class: "contact-name-line" },
          h("span", { class: "contact-name" }),
          h("span", { class: "contact-jid" }),
        ),
        h(
          "div",
          { class: "contact-presence" },
          h("span", { class: "dot", "aria-hidden": "true" }),
          h("span", { class: "contact-state" }),
          h("span", { class: "contact-status" }),
        ),
        h("div", { class: "contact-note" }),
      ),
      h("div", { class: "row-actions" }),
    );
    this.#showActions(row, item.jid);
    return row;
  }

  #showActions(row, jid) {
    const name = displayName(jid, this.session.roster.get(jid)?.name);
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
    const name = displayName(jid, this.session.roster.get(jid)?.name);
    const actions = row.querySelector(".row-actions");
    const cancel = h(
      "button",
      {
        type: "button",
        class: "button small",
        onclick: () => {
          this.#showActions(row, jid);
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
    const name = displayName(item.jid, item.name);
    row.querySelector(".avatar").textContent = initials(name);
    row.querySelector(".contact-name").textContent = name;
    row.querySelector(".contact-jid").textContent = item.jid;
    row.querySelector(".dot").className = `dot tone-${shown.tone}`;
    row.querySelector(".contact-state").textContent = shown.label;
    const status = row.querySelector(".contact-status");
    status.textContent = shown.status;
    // Long texts are cut short in the row; the tooltip keeps all of it.
    if (shown.status) status.title = shown.status;
    else status.removeAttribute("title");
    row.querySelector(".contact-note").textContent = shown.note;
    row.dataset.tone = shown.tone;
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
      await addContact(this.session.client, jid);
      input.value = "";
      flash(result, `Asked ${jid} to share their presence with you.`);
    } catch (error) {
      flash(result, `Could not add ${jid}: ${error.message}`, "error");
    }
  }
}
