// Settings -> Presence -> Time zone: where "Clear after: Today" and "This week" end
// (urn:chorus:presence:0 time-zone).

import { $, flash, h } from "./dom.js";
import { NS, child, x } from "./xml.js";

export async function getTimeZone(client) {
  const result = await client.iq("get", x("time-zone", { xmlns: NS.state }));
  return child(result, "time-zone", NS.state).getAttribute("name");
}

/** Sets the user's time zone; the server's refusal (a name it does not know) is thrown. */
export async function setTimeZone(client, name) {
  const result = await client.iq("set", x("time-zone", { xmlns: NS.state, name }));
  return child(result, "time-zone", NS.state).getAttribute("name");
}

/** The IANA names this browser knows, UTC first; `current` among them whatever it is. */
function zoneNames(current) {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return [...new Set(["UTC", current, ...known].filter(Boolean))];
}

export class TimeZoneSettings {
  constructor(session) {
    this.session = session;
    this.form = $("#time-zone-form");
    this.select = $("#time-zone");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save();
    });
    this.select.addEventListener("change", () => flash($("#time-zone-result"), ""));
  }

  /** Reads the setting and offers every zone, the browser's own named as such. */
  async load() {
    const current = await getTimeZone(this.session.client);
    const browser = Intl.DateTimeFormat().resolvedOptions().timeZone;
    this.select.replaceChildren(
      ...zoneNames(current).map((name) =>
        h("option", { value: name }, name === browser ? `${name} (this browser)` : name),
      ),
    );
    this.select.value = current;
  }

  async #save() {
    const result = $("#time-zone-result");
    try {
      this.select.value = await setTimeZone(this.session.client, this.select.value);
      flash(result, "Saved.");
    } catch (error) {
      flash(result, `Not saved: ${error.message}`, "error");
    }
  }
}
