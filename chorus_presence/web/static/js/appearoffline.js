// Appear offline: the status menu's switch, and the header saying so while it is on.
//
// The setting is the account's (urn:chorus:visibility:0, appear-offline), kept by the server
// across sign-ins until turned off: the page only shows what the server answers.

import { setVisibility } from "./chorus.js";
import { $, announce } from "./dom.js";

export class AppearOffline {
  constructor(session) {
    this.session = session;
    this.box = $("#presence-appear-offline");
    this.box.addEventListener("change", () => this.#change(this.box.checked));
    session.addEventListener("visibility", () => this.render());
    this.render();
  }

  render() {
    const hidden = Boolean(this.session.visibility.appearOffline);
    this.box.checked = hidden;
    $("#presence-hidden").hidden = !hidden;
    $("#presence-button").classList.toggle("appears-offline", hidden);
  }

  async #change(hidden) {
    this.box.disabled = true;
    try {
      this.session.visibility = await setVisibility(this.session.client, { appearOffline: hidden });
      this.session.emit("visibility");
      announce(hidden ? "You now appear offline to everyone" : "Your contacts see your presence again");
    } catch (error) {
      this.render();
      announce(`Not changed: ${error.message}`);
    } finally {
      this.box.disabled = false;
    }
  }
}
