// The product's features over the XMPP interfaces every other client uses: roster (RFC 6121),
// presence states, visibility and routing (docs/protocol.md), so the portal, stock clients and
// the command line always agree.

import { NS, child, children, text, x } from "./xml.js";

export const STATES = [
  { id: "available", label: "Available", tone: "available" },
  { id: "away", label: "Away", tone: "away" },
  { id: "dnd", label: "Do Not Disturb", tone: "busy" },
  { id: "brb", label: "Be Right Back", tone: "away" },
  { id: "busy", label: "Busy", tone: "busy" },
  { id: "in-meeting", label: "In Meeting", tone: "busy" },
];

// The status text the server adds when none is given; showing it again next to the state
// label would only repeat it.
const DEFAULT_STATUS = {
  brb: "Be Right Back",
  dnd: "Do Not Disturb",
  busy: "Busy",
  "in-meeting": "In a meeting",
};

const SHOW_TO_STATE = { chat: "available", away: "away", xa: "away", dnd: "dnd" };

export const ROUTING_STATES = [
  ...STATES.map(({ id, label }) => ({ id, label })),
  { id: "offline", label: "Not logged in" },
];

export const DEVICE_KINDS = [
  { id: "desk-phone", label: "Desk phone" },
  { id: "mobile", label: "Mobile" },
  { id: "softphone", label: "Softphone" },
  { id: "voicemail", label: "Voicemail" },
  { id: "other", label: "Other" },
];

export function stateInfo(id) {
  return STATES.find((state) => state.id === id) || STATES[0];
}

export function kindLabel(id) {
  return DEVICE_KINDS.find((kind) => kind.id === id)?.label || id;
}

/**
 * When the sender says the presence began: XEP-0319 idle time, else a XEP-0203 delay stamp;
 * null when it says nothing.
 */
export function presenceSince(stanza) {
  const idle = child(stanza, "idle", NS.idle)?.getAttribute("since");
  const stamp = idle || child(stanza, "delay", NS.delay)?.getAttribute("stamp");
  const when = stamp ? new Date(stamp) : null;
  return when && !Number.isNaN(when.getTime()) ? when : null;
}

/** What an available presence says: {state, label, tone, status}. */
export function readPresence(stanza) {
  const explicit = text(stanza, "state", NS.state);
  const show = text(stanza, "show");
  const status = text(stanza, "status") || "";
  if (explicit === "offline") {
    // Presence automation: the seed shows such users as Away, with the server's note.
    return { state: "offline", label: "Away", tone: "away", status: status || "Not logged in" };
  }
  const info = stateInfo(explicit || SHOW_TO_STATE[show] || "available");
  const shown = status === DEFAULT_STATUS[info.id] ? "" : status;
  return { state: info.id, label: info.label, tone: info.tone, status: shown, until: readUntil(stanza) };
}

/** When the state a presence carries clears itself (its `until`), or null. */
function readUntil(stanza) {
  const until = child(stanza, "state", NS.state)?.getAttribute("until");
  const date = until ? new Date(until) : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

/**
 * The user's presence. `clearAfter` (a duration such as "PT30M", "today" or "this-week") or
 * `until` (a Date) makes the server clear the state then.
 */
export function presenceStanza(state, status, { clearAfter = null, until = null } = {}) {
  const expiry = until ? { until: until.toISOString().replace(/\.\d+Z$/, "Z") } : { for: clearAfter };
  return x(
    "presence",
    {},
    x("state", { xmlns: NS.state, ...expiry }, state),
    status ? x("status", {}, status) : null,
  );
}

// Roster (RFC 6121 section 2)

export function readRosterItem(node) {
  const groups = children(node, "group", NS.roster)
    .map((group) => group.textContent.trim())
    .filter(Boolean);
  return {
    jid: node.getAttribute("jid").toLowerCase(),
    name: node.getAttribute("name") || "",
    subscription: node.getAttribute("subscription") || "none",
    ask: node.getAttribute("ask") === "subscribe",
    groups: [...new Set(groups)],
  };
}

export async function getRoster(client) {
  const result = await client.iq("get", x("query", { xmlns: NS.roster }));
  return children(child(result, "query", NS.roster), "item", NS.roster).map(readRosterItem);
}

/**
 * Adding a contact is asking to see their presence: a roster item, then a request, which
 * carries the user's display name as its nickname (XEP-0172) when they have one.
 */
export async function addContact(client, jid, nick) {
  await client.iq("set", x("query", { xmlns: NS.roster }, x("item", { jid })));
  const said = nick ? x("nick", { xmlns: NS.nick }, nick) : null;
  client.send(x("presence", { to: jid, type: "subscribe" }, said));
}

/** The nickname (XEP-0172) a subscription request carries, or "". */
export function readNick(stanza) {
  return text(stanza, "nick", NS.nick) || "";
}

export async function removeContact(client, jid) {
  await client.iq(
    "set",
    x("query", { xmlns: NS.roster }, x("item", { jid, subscription: "remove" })),
  );
}

// Visibility (urn:chorus:visibility:0)

function readVisibility(node) {
  const list = (name) => children(child(node, name, NS.visibility), "contact", NS.visibility);
  return {
    policy: node.getAttribute("policy") || "ask",
    awayWhenOffline: node.getAttribute("away-when-offline") === "true",
    appearOffline: node.getAttribute("appear-offline") === "true",
    pending: list("pending").map((item) => ({
      jid: item.getAttribute("jid"),
      status: text(item, "status", NS.visibility) || text(item, "status") || "",
      nick: text(item, "nick", NS.nick) || "",
    })),
    allowed: list("allowed").map((item) => item.getAttribute("jid")),
    blocked: list("blocked").map((item) => item.getAttribute("jid")),
  };
}

export async function getVisibility(client) {
  const result = await client.iq("get", x("visibility", { xmlns: NS.visibility }));
  return readVisibility(child(result, "visibility", NS.visibility));
}

export async function setVisibility(client, { policy, awayWhenOffline, appearOffline }) {
  const result = await client.iq(
    "set",
    x("visibility", {
      xmlns: NS.visibility,
      policy,
      "away-when-offline": awayWhenOffline === undefined ? undefined : String(awayWhenOffline),
      "appear-offline": appearOffline === undefined ? undefined : String(appearOffline),
    }),
  );
  return readVisibility(child(result, "visibility", NS.visibility));
}

/** action: "accept", "block" or "allow". */
export async function changeVisibility(client, action, jid) {
  await client.iq("set", x(action, { xmlns: NS.visibility, jid }));
}

// Routing (urn:chorus:routing:0)

export async function getRouting(client) {
  const result = await client.iq("get", x("routing", { xmlns: NS.routing }));
  const node = child(result, "routing", NS.routing);
  const map = {};
  for (const item of children(node, "map", NS.routing)) {
    map[item.getAttribute("state")] = item.getAttribute("device");
  }
  return {
    enabled: node.getAttribute("enabled") === "true",
    defaultDevice: node.getAttribute("default") || "",
    devices: children(node, "device", NS.routing).map((item) => ({
      name: item.getAttribute("name"),
      kind: item.getAttribute("kind"),
    })),
    map,
  };
}

/** Replaces the whole configuration, as the protocol defines a set. */
export async function setRouting(client, config) {
  const payload = x(
    "routing",
    {
      xmlns: NS.routing,
      enabled: String(config.enabled),
      default: config.defaultDevice || undefined,
    },
    config.devices.map((device) => x("device", { name: device.name, kind: device.kind })),
    ROUTING_STATES.filter((state) => config.map[state.id]).map((state) =>
      x("map", { state: state.id, device: config.map[state.id] }),
    ),
  );
  await client.iq("set", payload);
}

export async function getRoute(client, jid) {
  const result = await client.iq("get", x("route", { xmlns: NS.routing }), jid);
  const node = child(result, "route", NS.routing);
  return {
    jid: node.getAttribute("jid"),
    state: node.getAttribute("state"),
    device: node.getAttribute("device") || "",
    kind: node.getAttribute("kind") || "",
  };
}

// Block list (XEP-0191): no stanzas at all, either way, with whoever is on it

export async function getBlockList(client) {
  const result = await client.iq("get", x("blocklist", { xmlns: NS.blocking }));
  return children(child(result, "blocklist", NS.blocking), "item", NS.blocking).map((item) =>
    item.getAttribute("jid").toLowerCase(),
  );
}

export async function unblock(client, jid) {
  await client.iq("set", x("unblock", { xmlns: NS.blocking }, x("item", { jid })));
}

/** A block list push: {kind: "block" | "unblock", jids}, or null for another IQ. */
export function readBlockPush(stanza) {
  for (const kind of ["block", "unblock"]) {
    const node = child(stanza, kind, NS.blocking);
    if (node) {
      const jids = children(node, "item", NS.blocking).map((item) =>
        item.getAttribute("jid").toLowerCase(),
      );
      return { kind, jids };
    }
  }
  return null;
}

// Last activity (XEP-0012)

/** When a contact was last logged in, as the server recorded it; null when it does not say. */
export async function lastLoggedIn(client, jid) {
  try {
    const result = await client.iq("get", x("query", { xmlns: NS.last }), jid);
    const seconds = Number(child(result, "query", NS.last)?.getAttribute("seconds"));
    return Number.isFinite(seconds) && seconds >= 0 ? new Date(Date.now() - seconds * 1000) : null;
  } catch {
    // item-not-found (never logged in) or forbidden (not allowed to know): nothing to show.
    return null;
  }
}

// Display names: the 'fn' of each account's vCard4 (XEP-0292), read many at once with the
// names query (urn:chorus:names:0) rather than one vCard IQ per contact.

// What the server answers for in one names query.
const NAMES_PER_QUERY = 500;

/**
 * The display names of these addresses, by bare JID: those who have none, do not exist or
 * are across a block are not in it. A lost connection is thrown, to be asked again later.
 */
export async function getDisplayNames(client, jids) {
  const names = new Map();
  for (let start = 0; start < jids.length; start += NAMES_PER_QUERY) {
    const items = jids.slice(start, start + NAMES_PER_QUERY).map((jid) => x("item", { jid }));
    const result = await client.iq("get", x("names", { xmlns: NS.names }, items));
    for (const item of children(child(result, "names", NS.names), "item", NS.names)) {
      names.set(item.getAttribute("jid"), item.getAttribute("name"));
    }
  }
  return names;
}

/** Sets the user's own display name; an empty one clears it. The server's refusal is thrown. */
export async function setDisplayName(client, name) {
  const card = name ? [x("fn", {}, x("text", {}, name))] : [];
  await client.iq("set", x("vcard", { xmlns: NS.vcard4 }, card));
}
