// What the portal knows about the signed-in user and their contacts, kept current from the
// stanzas the server sends. The views listen for its events and redraw from it.

import {
  getRoster,
  getVisibility,
  presenceStanza,
  readPresence,
  readRosterItem,
} from "./chorus.js";
import { NS, child, children } from "./xml.js";
import { bareJid } from "./xmpp.js";

const SUBSCRIPTION_TYPES = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);
const SEES = new Set(["to", "both"]);

/**
 * Events: "roster", "presence" (detail: {jid, previous, current}), "visibility",
 * "pending-count" (the server said how many requests wait; `pendingCount` has it),
 * "subscribe" (detail: {jid}), "message" (detail: {jid, id, body}),
 * "message-error" (detail: {jid, id, error stanza}), "own-presence".
 */
export class Session extends EventTarget {
  constructor(client) {
    super();
    this.client = client;
    this.jid = client.jid;
    this.bare = bareJid(client.jid);
    this.roster = new Map();
    // bare JID -> Map(resource -> presence); the newest entry is the one shown, as the
    // server's effective state is the user's most recent choice.
    this.presences = new Map();
    this.visibility = { policy: "ask", awayWhenOffline: false, pending: [], allowed: [], blocked: [] };
    // The server pushes it whenever it changes, ahead of the lists, which are read again.
    this.pendingCount = 0;
    this.own = { state: "available", status: "" };
    this.refreshing = null;
    this.refreshAgain = false;
  }

  async start() {
    this.client.addEventListener("presence", (event) => this.#onPresence(event.detail));
    this.client.addEventListener("message", (event) => this.#onMessage(event.detail));
    this.client.addEventListener("iq", (event) => this.#onIq(event.detail));
    const [items] = await Promise.all([getRoster(this.client), this.refreshVisibility()]);
    for (const item of items) this.roster.set(item.jid, item);
    this.emit("roster");
    // Initial presence last: it makes the server send contacts' presence and the requests
    // still pending, which find the roster already loaded.
    this.setOwnPresence("available", "");
  }

  emit(name, detail = null) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  setOwnPresence(state, status) {
    this.client.send(presenceStanza(state, status));
    this.own = { state, status };
    this.emit("own-presence");
  }

  /** The presence shown for a contact: the newest of their online resources, or null. */
  presenceOf(jid) {
    const resources = this.presences.get(jid);
    if (!resources || resources.size === 0) return null;
    let newest = null;
    for (const entry of resources.values()) if (!newest || entry.at >= newest.at) newest = entry;
    return newest;
  }

  canSee(jid) {
    const item = this.roster.get(jid);
    return Boolean(item && SEES.has(item.subscription));
  }

  /** Reads the visibility lists again; calls that overlap share one round trip. */
  refreshVisibility() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          this.visibility = await getVisibility(this.client);
        } while (this.refreshAgain);
        this.pendingCount = this.visibility.pending.length;
        this.emit("visibility");
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  #onPresence(stanza) {
    const from = stanza.getAttribute("from") || "";
    const jid = bareJid(from);
    const type = stanza.getAttribute("type") || "available";
    if (SUBSCRIPTION_TYPES.has(type)) {
      if (type === "subscribe") this.emit("subscribe", { jid });
      this.refreshVisibility().catch(() => {});
      return;
    }
    if (jid === this.bare || type === "error" || type === "probe") return;
    const resource = from.includes("/") ? from.slice(from.indexOf("/") + 1) : "";
    const previous = this.presenceOf(jid);
    if (type === "unavailable") {
      if (resource) this.presences.get(jid)?.delete(resource);
      else this.presences.delete(jid);
    } else {
      if (!this.presences.has(jid)) this.presences.set(jid, new Map());
      this.presences.get(jid).set(resource, { ...readPresence(stanza), at: performance.now() });
    }
    this.emit("presence", { jid, previous, current: this.presenceOf(jid) });
  }

  #onMessage(stanza) {
    const count = child(stanza, "pending", NS.visibility);
    // Only the server speaks for the account, from its bare JID; a copy kept while a
    // connection was lost (it carries a delay) is out of date.
    if (count && stanza.getAttribute("from") === this.bare && !child(stanza, "delay", NS.delay)) {
      this.#onPendingCount(count);
      return;
    }
    const jid = bareJid(stanza.getAttribute("from") || "");
    const id = stanza.getAttribute("id");
    if (stanza.getAttribute("type") === "error") {
      this.emit("message-error", { jid, id, stanza });
      return;
    }
    const body = child(stanza, "body");
    if (body && body.textContent) this.emit("message", { jid, id, body: body.textContent });
  }

  #onPendingCount(node) {
    const count = Number(node.getAttribute("count"));
    if (!Number.isInteger(count) || count < 0) return;
    this.pendingCount = count;
    this.emit("pending-count");
    this.refreshVisibility().catch(() => {});
  }

  #onIq({ stanza, reply }) {
    const query = child(stanza, "query", NS.roster);
    const from = stanza.getAttribute("from");
    // RFC 6121 section 2.1.6: only pushes from the user's own account are genuine.
    if (stanza.getAttribute("type") !== "set" || !query || (from && bareJid(from) !== this.bare)) {
      return;
    }
    reply();
    for (const node of children(query, "item", NS.roster)) {
      const item = readRosterItem(node);
      if (item.subscription === "remove") {
        this.roster.delete(item.jid);
        this.presences.delete(item.jid);
      } else {
        this.roster.set(item.jid, item);
        if (!SEES.has(item.subscription)) this.presences.delete(item.jid);
      }
    }
    this.emit("roster");
    // Subscription changes move people between the visibility lists.
    this.refreshVisibility().catch(() => {});
  }
}
