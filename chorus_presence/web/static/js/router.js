// Which screen shows, chosen by the address's fragment so that the browser's back button
// works: #/contacts, #/chat (the open chats; beside the contacts on a wide screen, instead of
// them on a phone) and #/settings/PAGE for each `section.settings-page` named settings-PAGE.

import { $ } from "./dom.js";

// Below this width there is room for one pane at a time; portal.css uses the same width.
const ONE_PANE = window.matchMedia("(max-width: 760px)");

export class Router {
  constructor() {
    // Called with whether the chats are on screen, whenever that may have changed.
    this.onChats = () => {};
    // page -> called when that settings page is shown.
    this.onSettings = {};
    this.pushedChat = false;
    this.afterChat = null;
  }

  start() {
    window.addEventListener("hashchange", () => this.#route());
    ONE_PANE.addEventListener("change", () => this.#route());
    $("#chat-back").addEventListener("click", () => this.leaveChat({ focus: true }));
    if (!location.hash) history.replaceState(null, "", "#/contacts");
    this.#route();
  }

  /** Shows the chats, then calls `then`: on a phone, a step forward the back button undoes. */
  showChat(then = () => {}) {
    if (this.#parts()[0] === "chat") {
      then();
      return;
    }
    this.afterChat = then;
    this.pushedChat = true;
    location.hash = "#/chat";
  }

  /** Back from the chats to the contact list. */
  leaveChat({ focus = false } = {}) {
    if (this.#parts()[0] !== "chat") return;
    if (this.pushedChat) history.back();
    else location.replace("#/contacts");
    this.pushedChat = false;
    if (focus) {
      const heading = $("#contacts-heading");
      heading.tabIndex = -1;
      heading.focus();
    }
  }

  #parts() {
    return location.hash.replace(/^#\/?/, "").split("/");
  }

  #route() {
    const [section, page] = this.#parts();
    const settings = section === "settings";
    const pane = section === "chat" ? "chat" : "contacts";
    if (pane !== "chat") this.pushedChat = false;
    $("#contacts-view").hidden = settings;
    $("#settings-view").hidden = !settings;
    $("#contacts-view").dataset.pane = pane;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === (settings ? "settings" : "contacts")) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    this.onChats(!settings && (pane === "chat" || !ONE_PANE.matches));
    if (pane === "chat" && this.afterChat) this.afterChat();
    this.afterChat = null;
    if (!settings) return;
    const pages = [...document.querySelectorAll(".settings-page")].map((node) =>
      node.id.replace(/^settings-/, ""),
    );
    const current = pages.includes(page) ? page : pages[0];
    for (const name of pages) $(`#settings-${name}`).hidden = name !== current;
    for (const link of document.querySelectorAll("[data-settings]")) {
      if (link.dataset.settings === current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    this.onSettings[current]?.();
  }
}
