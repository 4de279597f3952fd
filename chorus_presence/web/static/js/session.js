// What the portal knows about the signed-in user and their contacts, kept current from the
// stanzas the server sends. The views listen for its events and redraw from it. A connection
// that drops and comes back is a new client attached to the same session (`resume`), so the
// views keep what they show and only see it brought up to date.

import {
  getBlockList,
  getDisplayNames,
  getRoster,
  getVisibility,
  lastLoggedIn,
  presenceSince,
  presenceStanza,
  readBlockPush,
  readNick,
  readPresence,
  readRosterItem,
  setDisplayName,
} from "./chorus.js";
import { NS, child, children, x } from "./xml.js";
import { bareJid } from "./xmpp.js";

const SUBSCRIPTION_TYPES = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);
const SEES = new Set(["to", "both"]);

/**
 * Events: "roster", "presence" (detail: {jid, previous, current, live}; `live` is false for
 * the presence a contact already had when this page connected), "visibility",
 * "pending-count" (the server said how many requests wait; `pendingCount` has it),
 * "subscribe" (detail: {jid, nick}), "message" (detail: {jid, id, body}),
 * "message-error" (detail: {jid, id, error stanza}), "own-presence", "blocked" (the XEP-0191
 * list changed), "last-seen" (detail: {jid}, or {} when the user's own setting changed),
 * "names" (display names arrived or changed), "connection" (`connected` changed; detail:
 * {reason} when it dropped).
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
    // bare JID -> when they were last logged in, as far as anyone told this page.
    this.lastSeen = new Map();
    // "Show when I was last seen": off, the user sees nobody's either, so none is shown.
    this.showsLastSeen = true;
    // bare JID -> the display name the account chose (vCard4), or null for none; asked once
    // per connection, the user's own included, many in one query. XEP-0292 has no pushes,
    // so a name changed meanwhile shows after the next reconnection or reload.
    this.names = new Map();
    this.askedNames = new Set();
    // Addresses to ask for in the next names query, gathered for one turn of the event loop.
    this.namesWanted = new Set();
    // bare JID -> the nickname (XEP-0172) their request to the user carried.
    this.nicks = new Map();
    // The XEP-0191 block list: bare JIDs and domains.
    this.blocked = new Set();
    this.visibility = { policy: "ask", awayWhenOffline: false, pending: [], allowed: [], blocked: [] };
    // The server pushes it whenever it changes, ahead of the lists, which are read again.
    this.pendingCount = 0;
    // The user's own presence; `until` is when the server clears it, as the server said.
    this.own = { state: "available", status: "", until: null };
    this.connected = true;
    // False until the server has answered the probes of the initial presence: a presence
    // before that is how a contact already was, one after it a change seen as it happened.
    this.settled = false;
    // What each contact showed before the connection dropped, so that a state that did not
    // change meanwhile keeps the time it began.
    this.former = new Map();
    this.refreshing = null;
    this.refreshAgain = false;
    this.listening = null;
  }

  async start() {
    this.#listen();
    await this.#load();
  }

  /** Carries on over a new connection after the previous one dropped. */
  async resume(client) {
    this.client = client;
    this.jid = client.jid;
    for (const jid of this.presences.keys()) this.former.set(jid, this.presenceOf(jid));
    this.presences.clear();
    // Contacts may have come and gone, or renamed themselves, meanwhile: the server is asked
    // again. The names known so far stay shown until the answer replaces them.
    this.lastSeen.clear();
    this.askedNames.clear();
    this.settled = false;
    this.#listen();
    await this.#load();
    this.connected = true;
    this.emit("connection");
    // Whatever was shown before and was not sent again is gone.
    for (const jid of this.former.keys()) {
      const previous = this.former.get(jid);
      if (!this.presenceOf(jid)) this.emit("presence", { jid, previous, current: null, live: true });
    }
    this.former.clear();
  }

  emit(name, detail = null) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  /** `clearAfter`: when the server clears it ("PT30M", "today", "this-week"), or null. */
  setOwnPresence(state, status, clearAfter = null) {
    this.own = { state, status, until: null };
    // While the connection is down, the next one starts with it.
    if (this.client.online) this.client.send(presenceStanza(state, status, { clearAfter }));
    this.emit("own-presence");
  }

  /** The own presence to send again on a new connection: with its end, or gone by then. */
  #ownStanza() {
    if (this.own.until && this.own.until <= new Date()) {
      this.own = { state: "available", status: "", until: null };
    }
    return presenceStanza(this.own.state, this.own.status, { until: this.own.until });
  }

  /**
   * What to call someone: the name the user gave the contact in their roster, else the name
   * the account chose for itself, else the address's local part.
   */
  nameOf(jid) {
    return this.knownName(jid) || jid.split("@")[0];
  }

  /**
   * The roster's name for someone, else the one they chose, else the nickname their request
   * carried; null when none is known.
   */
  knownName(jid) {
    return this.roster.get(jid)?.name || this.names.get(jid) || this.nicks.get(jid) || null;
  }

  /** Sets the user's own display name ("" clears it); the server's refusal is thrown. */
  async setOwnName(name) {
    await setDisplayName(this.client, name);
    this.names.set(this.bare, name || null);
    this.emit("names");
  }

  /**
   * Asks the server, once per connection, for the display names of these addresses: those
   * asked for in the same turn of the event loop go in one query.
   */
  askNames(jids) {
    const before = this.namesWanted.size;
    for (const jid of jids) {
      if (jid.includes("@") && !this.askedNames.has(jid)) this.namesWanted.add(jid);
    }
    if (before === 0 && this.namesWanted.size > 0) queueMicrotask(() => this.#fetchNames());
  }

  async #fetchNames() {
    const wanted = [...this.namesWanted];
    this.namesWanted.clear();
    for (const jid of wanted) this.askedNames.add(jid);
    let names;
    try {
      names = await getDisplayNames(this.client, wanted);
    } catch {
      // The connection dropped: the next one's load asks again.
      for (const jid of wanted) this.askedNames.delete(jid);
      return;
    }
    for (const jid of wanted) this.names.set(jid, names.get(jid) || null);
    this.emit("names");
  }

  /** The presence shown for a contact: the newest of their online resources, or null. */
  presenceOf(jid) {
    const resources = this.presences.get(jid);
    if (!resources || resources.size === 0) return null;
    let newest = null;
    for (const entry of resources.values()) if (!newest || entry.at >= newest.at) newest = entry;
    return newest;
  }

  /** Logged in: an available presence that is not the server's "Not logged in". */
  isOnline(jid) {
    const presence = this.presenceOf(jid);
    return Boolean(presence && presence.state !== "offline");
  }

  canSee(jid) {
    const item = this.roster.get(jid);
    return Boolean(item && SEES.has(item.subscription));
  }

  /** On the XEP-0191 block list, by their address or their domain. */
  isBlocked(jid) {
    return this.blocked.has(jid) || this.blocked.has(jid.slice(jid.indexOf("@") + 1));
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
        for (const { jid, nick } of this.visibility.pending) if (nick) this.nicks.set(jid, nick);
        this.emit("visibility");
        const { pending, allowed, blocked } = this.visibility;
        this.askNames([...pending.map((entry) => entry.jid), ...allowed, ...blocked]);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  #listen() {
    this.listening?.abort();
    this.listening = new AbortController();
    const options = { signal: this.listening.signal };
    const client = this.client;
    client.addEventListener("presence", (event) => this.#onPresence(event.detail), options);
    client.addEventListener("message", (event) => this.#onMessage(event.detail), options);
    client.addEventListener("iq", (event) => this.#onIq(event.detail), options);
    client.addEventListener(
      "disconnected",
      (event) => {
        if (client !== this.client) return;
        this.connected = false;
        this.emit("connection", { reason: event.detail.reason });
      },
      options,
    );
  }

  async #load() {
    const [items, blocked] = await Promise.all([
      getRoster(this.client),
      getBlockList(this.client),
      this.refreshVisibility(),
    ]);
    this.roster = new Map(items.map((item) => [item.jid, item]));
    this.blocked = new Set(blocked);
    this.emit("roster");
    this.emit("blocked");
    this.askNames([this.bare, ...this.roster.keys(), ...this.blocked]);
    // Initial presence last: it makes the server send contacts' presence and the requests
    // still pending, which find the roster already loaded. The server answers the probes
    // before it reads the ping that follows, so the pong marks the end of those answers.
    this.client.send(this.#ownStanza());
    this.emit("own-presence");
    await this.client.iq("get", x("ping", { xmlns: NS.ping }));
    this.settled = true;
    this.#askLastSeen([...this.roster.keys()]);
  }

  /** The user's "Show when I was last seen" as the server holds it. */
  setShowsLastSeen(shown) {
    if (shown === this.showsLastSeen) return;
    this.showsLastSeen = shown;
    this.lastSeen.clear();
    this.emit("last-seen", {});
    if (shown && this.settled) this.#askLastSeen([...this.roster.keys()]);
  }

  /** Asks the server when the contacts who are not logged in last were (XEP-0012). */
  #askLastSeen(jids) {
    const client = this.client;
    if (!this.showsLastSeen) return;
    for (const jid of jids) {
      if (!this.canSee(jid) || this.isOnline(jid) || this.lastSeen.has(jid)) continue;
      lastLoggedIn(client, jid).then((when) => {
        if (!when || !this.showsLastSeen || this.lastSeen.has(jid) || this.isOnline(jid)) return;
        this.lastSeen.set(jid, when);
        this.emit("last-seen", { jid });
      });
    }
  }

  #onPresence(stanza) {
    const from = stanza.getAttribute("from") || "";
    const jid = bareJid(from);
    const type = stanza.getAttribute("type") || "available";
    if (SUBSCRIPTION_TYPES.has(type)) {
      if (type === "subscribe") {
        const nick = readNick(stanza);
        if (nick) this.nicks.set(jid, nick);
        this.askNames([jid]);
        this.emit("subscribe", { jid, nick });
      }
      this.refreshVisibility().catch(() => {});
      return;
    }
    if (from === this.client.jid && type === "available") {
      // This page's own presence as the server sent it out: with its end, or cleared by it.
      const { state, status, until } = readPresence(stanza);
      this.own = { state, status, until };
      this.emit("own-presence");
      return;
    }
    if (jid === this.bare || type === "error" || type === "probe") return;
    const resource = from.includes("/") ? from.slice(from.indexOf("/") + 1) : "";
    const previous = this.presenceOf(jid);
    if (type === "unavailable") {
      if (resource) this.presences.get(jid)?.delete(resource);
      else this.presences.delete(jid);
      // The server's word, not this page's clock: a contact who hides their last seen is
      // answered for as for a stranger, and then shows none.
      if (previous?.state !== "offline" && !this.isOnline(jid) && this.settled) this.#askLastSeen([jid]);
    } else {
      const shown = readPresence(stanza);
      const before = previous || (this.settled ? null : this.former.get(jid));
      let since = presenceSince(stanza);
      if (!since && before && before.state === shown.state) since = before.since;
      else if (!since && this.settled) since = new Date();
      if (!this.presences.has(jid)) this.presences.set(jid, new Map());
      this.presences.get(jid).set(resource, { ...shown, since, at: performance.now() });
      if (shown.state !== "offline") this.lastSeen.delete(jid);
    }
    const current = this.presenceOf(jid);
    // While the probes are answered, what changed is measured against the last connection.
    const known = this.settled ? previous : previous || this.former.get(jid) || null;
    this.emit("presence", { jid, previous: known, current, live: this.settled || this.former.has(jid) });
    if (this.settled && !this.isOnline(jid)) this.#askLastSeen([jid]);
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
    const from = stanza.getAttribute("from");
    // RFC 6121 section 2.1.6 and XEP-0191 section 3.3: only pushes from the user's own
    // account are genuine.
    if (stanza.getAttribute("type") !== "set" || (from && bareJid(from) !== this.bare)) return;
    const blockPush = readBlockPush(stanza);
    if (blockPush) {
      reply();
      this.#onBlockPush(blockPush);
      return;
    }
    const query = child(stanza, "query", NS.roster);
    if (!query) return;
    reply();
    const added = [];
    for (const node of children(query, "item", NS.roster)) {
      const item = readRosterItem(node);
      if (item.subscription === "remove") {
        this.roster.delete(item.jid);
        this.presences.delete(item.jid);
        this.lastSeen.delete(item.jid);
      } else {
        const before = this.roster.get(item.jid);
        this.roster.set(item.jid, item);
        if (!SEES.has(item.subscription)) {
          this.presences.delete(item.jid);
          this.lastSeen.delete(item.jid);
        } else if (!before || !SEES.has(before.subscription)) {
          added.push(item.jid);
        }
      }
    }
    this.emit("roster");
    this.askNames([...this.roster.keys()]);
    // Subscription changes move people between the visibility lists.
    this.refreshVisibility().catch(() => {});
    // A contact who now shares their presence and is not logged in: since when?
    if (added.length && this.settled) {
      this.client
        .iq("get", x("ping", { xmlns: NS.ping }))
        .then(() => this.#askLastSeen(added))
        .catch(() => {});
    }
  }

  #onBlockPush({ kind, jids }) {
    if (kind === "block") for (const jid of jids) this.blocked.add(jid);
    else if (jids.length === 0) this.blocked.clear();
    else for (const jid of jids) this.blocked.delete(jid);
    this.emit("blocked");
    if (kind === "block") this.askNames(jids);
  }
}
