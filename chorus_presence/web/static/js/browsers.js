// Settings -> Signed-in browsers: the browsers and apps that stay signed in to the account with
// a token (urn:chorus:sign-ins:0, docs/protocol.md), each with "Sign out"; and signing this
// browser out, which revokes its token so that it signs nobody in again.

import { $, flash, h } from "./dom.js";
import { child, children, x } from "./xml.js";

const SIGN_INS = "urn:chorus:sign-ins:0";
const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

async function listSignIns(client) {
  const result = await client.iq("get", x("sign-ins", { xmlns: SIGN_INS }));
  return children(child(result, "sign-ins", SIGN_INS), "sign-in", SIGN_INS).map((node) => ({
    id: node.getAttribute("id"),
    label: node.getAttribute("label") || "Unknown client",
    lastUsed: new Date(node.getAttribute("last-used")),
    created: new Date(node.getAttribute("created")),
    current: node.getAttribute("current") === "true",
  }));
}

function revoke(client, id) {
  return client.iq("set", x("revoke", { xmlns: SIGN_INS, id }));
}

/**
 * Signs this browser out: its sign-in revoked on the server (every tab sharing it is signed
 * out with it) and its token forgotten here, then the connection closed.
 */
export async function signOut(session, signIn) {
  const client = session.client;
  // The server ends the stream once the sign-in is revoked: that is this sign-out, not a
  // lost connection.
  client.closing = true;
  try {
    const current = (await listSignIns(client)).find((item) => item.current);
    if (current) await revoke(client, current.id);
  } catch {
    // Offline or refused: the token is still forgotten here, and expires on the server.
  }
  signIn.forget();
  await client.disconnect();
}

export class SignedInBrowsers {
  constructor(session, signIn) {
    this.session = session;
    this.signIn = signIn;
  }

  async show() {
    const result = $("#browsers-result");
    try {
      this.#render(await listSignIns(this.session.client));
    } catch (error) {
      flash(result, `Could not list the signed-in browsers: ${error.message}`, "error");
    }
  }

  #render(entries) {
    $("#browser-list").replaceChildren(
      ...entries.map((entry) =>
        h(
          "li",
          { class: "person", dataset: { signIn: entry.id } },
          h(
            "div",
            { class: "person-main" },
            h(
              "span",
              { class: "person-jid" },
              entry.label,
              entry.current ? " " : null,
              entry.current ? h("span", { class: "badge badge-quiet" }, "This browser") : null,
            ),
            h(
              "span",
              { class: "person-note" },
              `Last used ${WHEN.format(entry.lastUsed)} · signed in ${WHEN.format(entry.created)}`,
            ),
          ),
          h(
            "div",
            { class: "row-actions" },
            h(
              "button",
              {
                type: "button",
                class: "button small",
                "aria-label": `Sign out ${entry.label}${entry.current ? " (this browser)" : ""}`,
                onclick: (event) => this.#signOut(event.currentTarget, entry),
              },
              "Sign out",
            ),
          ),
        ),
      ),
    );
    $("#browsers-empty").hidden = entries.length > 0;
  }

  async #signOut(button, entry) {
    button.disabled = true;
    if (entry.current) {
      await signOut(this.session, this.signIn);
      location.reload();
      return;
    }
    const result = $("#browsers-result");
    try {
      await revoke(this.session.client, entry.id);
      flash(result, `Signed out ${entry.label}.`);
      // Focus would vanish with the row; the page's heading is the nearest stable place.
      const heading = $("#settings-browsers-heading");
      heading.tabIndex = -1;
      heading.focus();
    } catch (error) {
      flash(result, `Could not sign out ${entry.label}: ${error.message}`, "error");
      button.disabled = false;
    }
    await this.show();
  }
}
