// A small XMPP client over WebSocket (RFC 7395): SASL2 login (sasl2.js), binding, IQ round
// trips, and events for the stanzas the portal shows.

import { XmppError } from "./errors.js";
import { authenticate } from "./sasl2.js";
import { NS, child, parse, serialize, text, x } from "./xml.js";

export { XmppError };

const IQ_TIMEOUT_MS = 20000;

export function bareJid(jid) {
  const slash = jid.indexOf("/");
  return (slash === -1 ? jid : jid.slice(0, slash)).toLowerCase();
}

export function splitJid(jid) {
  const bare = bareJid(jid);
  const at = bare.indexOf("@");
  return at === -1 ? { local: null, domain: bare } : { local: bare.slice(0, at), domain: bare.slice(at + 1) };
}

function randomId(prefix) {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return prefix + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Events: "presence", "message" (detail: the stanza element), "iq" (detail: {stanza, reply}
 * for a get or set from the server; call reply(payload) or leave it for the default
 * service-unavailable) and "disconnected" (detail: {reason}).
 */
export class XmppClient extends EventTarget {
  constructor() {
    super();
    this.socket = null;
    this.jid = null;
    this.issued = null;
    this.pending = new Map();
    this.inbox = [];
    this.waiting = null;
    this.online = false;
    this.closing = false;
  }

  /**
   * Opens the WebSocket, authenticates with `login` (see sasl2.js: a password or a sign-in
   * token) and binds a resource. `issued` is then the token the server gave, or null.
   */
  async connect({ url, jid, login, resource }) {
    if (!globalThis.crypto?.subtle) {
      throw new XmppError(
        "insecure-context",
        "Signing in needs a secure page: open the portal over HTTPS (or on localhost).",
      );
    }
    const { local, domain } = splitJid(jid);
    if (!local || !domain) {
      throw new XmppError("jid-malformed", "Enter your full address, such as alice@example.com.");
    }
    this.domain = domain;
    await this.#openSocket(url);
    try {
      const features = await this.#openStream();
      const io = {
        send: (item) => this.send(item),
        next: () => this.#next(),
        unexpected: (node) => this.#unexpected(node),
      };
      this.issued = await authenticate(features, io, { username: local, ...login });
      this.jid = await this.#bind(resource);
    } catch (error) {
      this.#dropSocket();
      throw error;
    }
    this.online = true;
    // From here on stanzas are dispatched as events rather than read in sequence.
    for (const queued of this.inbox.splice(0)) this.#dispatch(queued);
    return this.jid;
  }

  send(description) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      throw new XmppError("not-connected", "You are not connected to the server.");
    }
    this.socket.send(serialize(description));
  }

  /** Sends an IQ and resolves with the result stanza, or rejects with an XmppError. */
  iq(type, payload, to) {
    const id = randomId("iq-");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new XmppError("remote-server-timeout", "The server did not answer in time."));
      }, IQ_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.send(x("iq", { type, id, to }, payload));
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error);
      }
    });
  }

  /** Ends the stream politely (RFC 7395 section 3.6) and closes the socket. */
  async disconnect() {
    if (!this.socket) return;
    this.closing = true;
    const socket = this.socket;
    const closed = new Promise((resolve) => socket.addEventListener("close", resolve, { once: true }));
    try {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(serialize(x("close", { xmlns: NS.framing })));
      }
    } catch {
      // The socket closing on its own is just as good.
    }
    const timeout = new Promise((resolve) => setTimeout(resolve, 2000));
    await Promise.race([closed, timeout]);
    this.#dropSocket();
  }

  // Connection set-up

  #openSocket(url) {
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new WebSocket(url, "xmpp");
      } catch {
        reject(new XmppError("connection-failed", "Cannot reach the server."));
        return;
      }
      this.socket = socket;
      socket.addEventListener("message", (event) => this.#received(event.data));
      socket.addEventListener("close", () => this.#closed(), { once: true });
      socket.addEventListener(
        "open",
        () => {
          if (socket.protocol !== "xmpp") {
            reject(new XmppError("connection-failed", "The server does not speak XMPP here."));
            return;
          }
          resolve();
        },
        { once: true },
      );
      socket.addEventListener(
        "error",
        () => reject(new XmppError("connection-failed", "Cannot reach the server.")),
        { once: true },
      );
    });
  }

  async #openStream() {
    this.send(x("open", { xmlns: NS.framing, to: this.domain, version: "1.0" }));
    const opened = await this.#next();
    if (opened.localName !== "open") throw this.#unexpected(opened);
    const features = await this.#next();
    if (features.localName !== "features") throw this.#unexpected(features);
    return features;
  }

  async #bind(resource) {
    this.send(
      x(
        "iq",
        { type: "set", id: "bind" },
        x("bind", { xmlns: NS.bind }, resource ? x("resource", {}, resource) : null),
      ),
    );
    const result = await this.#next();
    if (result.localName !== "iq" || result.getAttribute("type") !== "result") {
      throw XmppError.fromStanza(result);
    }
    return text(child(result, "bind", NS.bind), "jid", NS.bind);
  }

  #unexpected(node) {
    if (node.localName === "error" && node.namespaceURI === NS.streams) {
      const condition = [...node.children].find((item) => item.localName !== "text");
      if (condition?.localName === "host-unknown") {
        return new XmppError("host-unknown", `This server does not serve ${this.domain}.`);
      }
      return new XmppError(condition?.localName || "stream-error", "The server ended the connection.");
    }
    if (node.localName === "closed") {
      return new XmppError("connection-failed", "The connection closed while signing in.");
    }
    return new XmppError("unexpected", "The server answered unexpectedly.");
  }

  /** The next element during set-up, in order. */
  #next() {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    if (!this.socket) return Promise.resolve(document.createElementNS(null, "closed"));
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  // Traffic

  #received(data) {
    const node = parse(data);
    if (!node) return;
    if (!this.online) {
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = null;
        resolve(node);
      } else {
        this.inbox.push(node);
      }
      return;
    }
    this.#dispatch(node);
  }

  #dispatch(node) {
    const name = node.localName;
    if (node.namespaceURI === NS.framing && name === "close") {
      this.#dropSocket();
      return;
    }
    if (node.namespaceURI === NS.streams && name === "error") {
      const condition = [...node.children].find((item) => item.localName !== "text");
      this.streamError = condition?.localName;
      return;
    }
    if (name === "iq") this.#onIq(node);
    else if (name === "presence" || name === "message") {
      this.dispatchEvent(new CustomEvent(name, { detail: node }));
    }
  }

  #onIq(stanza) {
    const type = stanza.getAttribute("type");
    const id = stanza.getAttribute("id");
    if (type === "result" || type === "error") {
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      clearTimeout(waiter.timer);
      if (type === "result") waiter.resolve(stanza);
      else waiter.reject(XmppError.fromStanza(stanza));
      return;
    }
    let answered = false;
    const reply = (payload = null) => {
      answered = true;
      this.send(x("iq", { type: "result", id, to: stanza.getAttribute("from") }, payload));
    };
    const payload = stanza.children[0];
    if (type === "get" && payload?.localName === "ping" && payload.namespaceURI === NS.ping) {
      // The server pings quiet sessions (XEP-0199) and ends those that do not answer.
      reply();
      return;
    }
    this.dispatchEvent(new CustomEvent("iq", { detail: { stanza, reply } }));
    if (!answered) {
      this.send(
        x(
          "iq",
          { type: "error", id, to: stanza.getAttribute("from") },
          x("error", { type: "cancel" }, x("service-unavailable", { xmlns: NS.stanzas })),
        ),
      );
    }
  }

  #closed() {
    const wasOnline = this.online;
    this.online = false;
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new XmppError("not-connected", "The connection to the server was lost."));
    }
    this.pending.clear();
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve(document.createElementNS(null, "closed"));
    }
    this.socket = null;
    if (wasOnline) {
      const reason = this.closing ? "signed-out" : this.streamError || "connection-lost";
      this.dispatchEvent(new CustomEvent("disconnected", { detail: { reason } }));
    }
  }

  #dropSocket() {
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close();
  }
}
