// Settings -> Presence: the XEP-0191 block list, shown beside the presence blocked list and
// worded apart from it: whoever is on this one exchanges nothing at all with the user.

import { unblock } from "./chorus.js";
import { $, flash, h, who } from "./dom.js";

export class BlockListSettings {
  constructor(session) {
    this.session = session;
    session.addEventListener("blocked", () => this.render());
    session.addEventListener("names", () => this.render());
    this.render();
  }

  render() {
    const list = $("#blocklist");
    const entries = [...this.session.blocked].sort();
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.jid : null;
    $("#blocklist-count").textContent = String(entries.length);
    list.replaceChildren(
      ...entries.map((jid) =>
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
                class: "button small",
                "aria-label": `Unblock ${jid}`,
                dataset: { jid },
                onclick: (event) => this.#unblock(event.currentTarget, jid),
              },
              "Unblock",
            ),
          ),
        ),
      ),
    );
    $('[data-empty-for="blocklist"]').hidden = entries.length > 0;
    if (focused) {
      const again = list.querySelector(`[data-jid="${CSS.escape(focused)}"] button`);
      (again || $("#blocklist-section summary")).focus();
    }
  }

  async #unblock(button, jid) {
    button.disabled = true;
    const result = $("#lists-result");
    try {
      await unblock(this.session.client, jid);
      // The server's push takes the row away.
      flash(result, `${jid} is off your block list: messages can pass again.`);
      $("#blocklist-section summary").focus();
    } catch (error) {
      flash(result, `Could not unblock ${jid}: ${error.message}`, "error");
      button.disabled = false;
    }
  }
}
