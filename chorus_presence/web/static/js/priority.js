// Settings -> Presence -> People who reach me in Do Not Disturb (urn:chorus:dnd:0): while the
// user is in Do Not Disturb, Busy or In Meeting, messages from these people alert as usual and
// their calls ring the usual device. The server decides who may be listed and says why not.

import { $, announce, flash, h, who } from "./dom.js";
import { child, children, x } from "./xml.js";

const DND = "urn:chorus:dnd:0";

export async function getPriorityList(client) {
  const result = await client.iq("get", x("priority-list", { xmlns: DND }));
  const node = child(result, "priority-list", DND);
  return children(node, "contact", DND).map((contact) => contact.getAttribute("jid"));
}

/** action: "add" or "remove"; the server's refusal is thrown with its text. */
export async function changePriorityList(client, action, jid) {
  await client.iq("set", x(action, { xmlns: DND, jid }));
}

export class PrioritySettings {
  constructor(session) {
    this.session = session;
    this.contacts = [];
    this.input = $("#priority-jid");
    $("#priority-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#add();
    });
    session.addEventListener("names", () => this.render());
  }

  async load() {
    this.contacts = await getPriorityList(this.session.client);
    this.render();
  }

  render() {
    const list = $("#priority-list");
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.jid : null;
    $("#priority-count").textContent = String(this.contacts.length);
    list.replaceChildren(
      ...this.contacts.map((jid) =>
        h(
          "li",
          { class: "person", dataset: { jid } },
          h("div", { class: "person-main" }, who(this.session.knownName(jid), jid)),
          h(
            "div",
            { class: "row-actions" },
            h(
              "button",
              {
                type: "button",
                class: "button small quiet",
                "aria-label": `Remove ${jid}`,
                dataset: { jid },
                onclick: (event) => this.#remove(event.currentTarget, jid),
              },
              "Remove",
            ),
          ),
        ),
      ),
    );
    $('[data-empty-for="priority-list"]').hidden = this.contacts.length > 0;
    if (focused) {
      const again = list.querySelector(`[data-jid="${CSS.escape(focused)}"] button`);
      (again || $("#priority-section summary")).focus();
    }
  }

  async #add() {
    const result = $("#priority-result");
    const jid = this.input.value.trim();
    if (!jid) {
      flash(result, "Enter the address of the person who may reach you.", "error");
      this.input.focus();
      return;
    }
    try {
      await changePriorityList(this.session.client, "add", jid);
      this.input.value = "";
      const said = `${jid} reaches you in Do Not Disturb.`;
      flash(result, said);
      announce(said);
    } catch (error) {
      flash(result, `Could not add ${jid}: ${error.message}`, "error");
      this.input.focus();
    }
    await this.load().catch(() => {});
  }

  async #remove(button, jid) {
    button.disabled = true;
    const result = $("#priority-result");
    try {
      await changePriorityList(this.session.client, "remove", jid);
      flash(result, `${jid} no longer reaches you in Do Not Disturb.`);
      // Focus would vanish with the row; the list's heading is the nearest stable place.
      $("#priority-section summary").focus();
    } catch (error) {
      flash(result, `Could not remove ${jid}: ${error.message}`, "error");
      button.disabled = false;
    }
    await this.load().catch(() => {});
  }
}
