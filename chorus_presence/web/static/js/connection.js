// Keeping the portal connected: when the connection drops, a banner says so and the portal
// signs in again by itself, waiting longer after each failed try (exponential back-off with a
// cap, and jitter so that the many portals a server restart drops do not all come back in the
// same instant). A new sign-in uses the sign-in token (signin.js), never a stored password.

import { $, announce } from "./dom.js";

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;

// Stream errors after which the same sign-in would work again: the server went away, or cut
// a connection it had no fault to find with. Anything else (another session took over, the
// account was disabled, an administrator disconnected it) stays signed out.
const TRANSIENT = new Set([
  "connection-lost",
  "system-shutdown",
  "connection-timeout",
  "internal-server-error",
  "reset",
]);

const ENDED = {
  conflict: "You were signed out: this account signed in again elsewhere with this session.",
  "not-authorized": "You were signed out: the server no longer accepts this sign-in.",
  "policy-violation": "You were signed out by the server.",
};

/** How long to wait before try number `attempt` (0 for the first). */
export function retryDelay(attempt, random = Math.random) {
  const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2;
}

/**
 * `signInAgain()` resolves with a new connected client, or rejects with an XmppError.
 * States, shown in the banner: "online", "waiting" (`retryAt`), "connecting" and "ended".
 */
export class Connection {
  constructor(session, signInAgain) {
    this.session = session;
    this.signInAgain = signInAgain;
    this.state = "online";
    this.attempt = 0;
    this.timer = null;
    this.ticker = null;
    this.retryAt = 0;
    session.addEventListener("connection", (event) => {
      if (!session.connected) this.#dropped(event.detail?.reason || "connection-lost");
    });
    $("#reconnect").addEventListener("click", () => {
      if (this.state === "ended") location.reload();
      else this.tryNow();
    });
    // Back on the network: no reason to wait out the delay.
    window.addEventListener("online", () => this.tryNow());
  }

  tryNow() {
    if (this.state !== "waiting") return;
    clearTimeout(this.timer);
    this.#attempt();
  }

  #dropped(reason) {
    // A drop while signing in again fails that try, which then waits for the next.
    if (reason === "signed-out" || this.state === "connecting") return;
    if (!TRANSIENT.has(reason)) {
      this.#end(ENDED[reason] || "You were signed out by the server.");
      return;
    }
    announce("The connection to the server was lost. Reconnecting.");
    this.attempt = 0;
    this.#wait();
  }

  #wait() {
    const delay = retryDelay(this.attempt);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.#show("waiting");
    this.timer = setTimeout(() => this.#attempt(), delay);
  }

  async #attempt() {
    this.#show("connecting");
    let client = null;
    try {
      client = await this.signInAgain();
      await this.session.resume(client);
    } catch (error) {
      if (client?.online) await client.disconnect();
      if (error.condition === "not-authorized") {
        this.#end("You were signed out: the server no longer accepts this sign-in.");
      } else {
        this.#wait();
      }
      return;
    }
    this.attempt = 0;
    this.#show("online");
    announce("Connected to the server again.");
  }

  #end(message) {
    clearTimeout(this.timer);
    this.#show("ended", message);
  }

  #show(state, message = "") {
    this.state = state;
    clearInterval(this.ticker);
    const banner = $("#connection-banner");
    banner.hidden = state === "online";
    banner.dataset.state = state;
    const button = $("#reconnect");
    const retry = $("#connection-retry");
    button.hidden = state === "connecting";
    button.textContent = state === "ended" ? "Sign in again" : "Reconnect now";
    // The message is an alert: written again, it would be read out again at each try.
    const said = $("#connection-message");
    const text = state === "ended" ? message : "The connection to the server is lost.";
    if (said.textContent !== text) said.textContent = text;
    if (state === "ended") {
      retry.textContent = "";
      return;
    }
    if (state === "connecting") retry.textContent = "Reconnecting…";
    if (state === "waiting") {
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((this.retryAt - Date.now()) / 1000));
        retry.textContent = `Trying again in ${seconds} s.`;
      };
      tick();
      this.ticker = setInterval(tick, 1000);
    }
  }
}
