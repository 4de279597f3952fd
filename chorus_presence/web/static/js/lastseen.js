// Settings -> Presence -> Show when I was last seen (urn:chorus:presence:0 last-seen). Off,
// nobody sees since when the user has been away or offline, and the user sees nobody's: the
// server keeps both from this page, and the page shows none of its own observations either.

import { $, announce, flash } from "./dom.js";
import { NS, child, x } from "./xml.js";

function shown(result) {
  return child(result, "last-seen", NS.state).getAttribute("show") === "true";
}

export async function getLastSeenShown(client) {
  return shown(await client.iq("get", x("last-seen", { xmlns: NS.state })));
}

export async function setLastSeenShown(client, show) {
  return shown(await client.iq("set", x("last-seen", { xmlns: NS.state, show: String(show) })));
}

export class LastSeenSettings {
  constructor(session) {
    this.session = session;
    this.toggle = $("#show-last-seen");
    this.toggle.addEventListener("change", () => this.#save());
  }

  async load() {
    this.session.setShowsLastSeen(await getLastSeenShown(this.session.client));
    this.toggle.checked = this.session.showsLastSeen;
  }

  async #save() {
    const result = $("#last-seen-result");
    const wanted = this.toggle.checked;
    try {
      this.session.setShowsLastSeen(await setLastSeenShown(this.session.client, wanted));
      this.toggle.checked = this.session.showsLastSeen;
      const said = wanted ? "Your last seen is shown." : "Your last seen is hidden, and you see nobody's.";
      flash(result, said);
      announce(said);
    } catch (error) {
      this.toggle.checked = this.session.showsLastSeen;
      flash(result, `Not saved: ${error.message}`, "error");
    }
  }
}
