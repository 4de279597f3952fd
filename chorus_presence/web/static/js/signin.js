// Staying signed in without keeping the password: after the first sign-in the portal holds a
// token the server issued (XEP-0484), and each sign-in with it brings the next one.
//
// "Keep me signed in" on: the token is kept in localStorage, under one client id for this
// browser, so a reload and every other tab sign in with it, until it is signed out or unused
// for [auth] sign_in_lifetime. Off: in sessionStorage under a client id of this tab only, so a
// reload of this tab stays signed in and nothing else does; closing the tab forgets it. Tabs
// sharing the token take turns (a Web Lock) so that none signs in with one another replaced.

import { XmppClient, XmppError } from "./xmpp.js";

const RECORD = "chorus-portal-sign-in";
const BROWSER_ID = "chorus-portal-client-id";
const LOCK = "chorus-portal-sign-in";
const SOFTWARE = "Chorus portal";

/** What this browser is, in the words a person would use: "Firefox on Linux". */
export function browserName() {
  const data = navigator.userAgentData;
  if (data?.brands?.length) {
    const named = data.brands.filter((item) => !/not.?a.?brand/i.test(item.brand));
    const brand = named.find((item) => item.brand !== "Chromium") || named[0];
    if (brand) return data.platform ? `${brand.brand} on ${data.platform}` : brand.brand;
  }
  const agent = navigator.userAgent;
  const browser =
    [
      ["Edg/", "Edge"],
      ["Firefox/", "Firefox"],
      ["Chrome/", "Chrome"],
      ["Safari/", "Safari"],
    ].find(([mark]) => agent.includes(mark))?.[1] || "Web browser";
  const system =
    [
      ["Android", "Android"],
      ["iPhone", "iOS"],
      ["iPad", "iPadOS"],
      ["Windows", "Windows"],
      ["Mac OS X", "macOS"],
      ["Linux", "Linux"],
    ].find(([mark]) => agent.includes(mark))?.[1];
  return system ? `${browser} on ${system}` : browser;
}

/** The sign-in kept in `storage`, unless there is none or its token has expired. */
function read(storage) {
  let record = null;
  try {
    record = JSON.parse(storage.getItem(RECORD) || "null");
  } catch {
    return null;
  }
  if (!record?.jid || !record?.token || !record?.clientId) return null;
  // Trying an expired token would only count as a failed sign-in.
  return Date.parse(record.expiry) > Date.now() ? record : null;
}

function browserId() {
  let id = localStorage.getItem(BROWSER_ID);
  if (!id) {
    id = crypto.randomUUID();
    localStorage.setItem(BROWSER_ID, id);
  }
  return id;
}

/** Runs `task` while no other tab of this browser signs in with the shared token. */
function exclusively(task) {
  return navigator.locks ? navigator.locks.request(LOCK, task) : task();
}

/**
 * How this tab signs in: with the password typed (once), then with the token it was given.
 * `connect(url, resource)` resolves with a connected client, or rejects with an XmppError;
 * a token the server refuses is forgotten.
 */
export class SignIn {
  constructor({ jid, keep, password = null, clientId }) {
    this.jid = jid;
    this.keep = keep;
    this.password = password;
    this.clientId = clientId;
  }

  /** The sign-in kept for this tab, from a sign-in before this page loaded; or null. */
  static saved() {
    const tab = read(sessionStorage);
    const record = tab || read(localStorage);
    return record && new SignIn({ jid: record.jid, keep: !tab, clientId: record.clientId });
  }

  static withPassword(jid, password, keep) {
    return new SignIn({ jid, password, keep, clientId: keep ? browserId() : crypto.randomUUID() });
  }

  get storage() {
    return this.keep ? localStorage : sessionStorage;
  }

  connect(url, resource) {
    if (this.password !== null) return this.#connect(url, resource, { password: this.password });
    return exclusively(async () => {
      // Read again: another tab may have signed in meanwhile and been given the next token.
      const record = read(this.storage);
      if (!record || record.jid !== this.jid) {
        throw new XmppError("not-authorized", "You have been signed out. Sign in again.");
      }
      return this.#connect(url, resource, { token: record.token });
    });
  }

  /** Forget the token here; the server forgets it when the sign-in is revoked. */
  forget() {
    const record = read(this.storage);
    if (record && record.clientId === this.clientId) this.storage.removeItem(RECORD);
  }

  async #connect(url, resource, secret) {
    const client = new XmppClient();
    try {
      await client.connect({
        url,
        jid: this.jid,
        resource,
        login: { ...secret, agent: { id: this.clientId, software: SOFTWARE, device: browserName() } },
      });
      this.#keep(client.issued);
      return client;
    } catch (error) {
      if (secret.token && ["not-authorized", "credentials-expired"].includes(error.condition)) {
        this.forget();
      }
      throw error;
    }
  }

  #keep(issued) {
    // The password is needed no longer: from now on the token signs this tab in again.
    this.password = null;
    if (!issued) return;
    const record = { jid: this.jid, token: issued.token, expiry: issued.expiry, clientId: this.clientId };
    this.storage.setItem(RECORD, JSON.stringify(record));
    // Kept for the browser now, so no longer for this tab alone.
    if (this.keep) sessionStorage.removeItem(RECORD);
  }
}
