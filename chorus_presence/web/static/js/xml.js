// Building and reading the XML of XMPP stanzas with the browser's own DOM tools.

export const NS = {
  client: "jabber:client",
  framing: "urn:ietf:params:xml:ns:xmpp-framing",
  streams: "http://etherx.jabber.org/streams",
  sasl: "urn:ietf:params:xml:ns:xmpp-sasl",
  bind: "urn:ietf:params:xml:ns:xmpp-bind",
  session: "urn:ietf:params:xml:ns:xmpp-session",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  roster: "jabber:iq:roster",
  ping: "urn:xmpp:ping",
  discoInfo: "http://jabber.org/protocol/disco#info",
  delay: "urn:xmpp:delay",
  idle: "urn:xmpp:idle:1",
  last: "jabber:iq:last",
  blocking: "urn:xmpp:blocking",
  state: "urn:chorus:presence:0",
  visibility: "urn:chorus:visibility:0",
  routing: "urn:chorus:routing:0",
  vcard4: "urn:ietf:params:xml:ns:vcard-4.0",
  names: "urn:chorus:names:0",
  nick: "http://jabber.org/protocol/nick",
};

const factory = document.implementation.createDocument(null, null, null);
const serializer = new XMLSerializer();
const parser = new DOMParser();

/**
 * A description of an element: x("iq", {type: "get"}, x("query", {xmlns: NS.roster})).
 * Children inherit their parent's namespace unless they name their own, as in XML itself,
 * which a DOM built with createElementNS does not do by itself.
 */
export function x(name, attrs = {}, ...children) {
  return { name, attrs, children: children.flat() };
}

export function build(description, inherited = NS.client) {
  const { xmlns = inherited, ...attrs } = description.attrs;
  const node = factory.createElementNS(xmlns, description.name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const item of description.children) {
    if (item === null || item === undefined || item === false) continue;
    if (typeof item === "string") node.appendChild(factory.createTextNode(item));
    else node.appendChild(build(item, xmlns));
  }
  return node;
}

export function serialize(description) {
  return serializer.serializeToString(build(description));
}

/** One WebSocket message as an element; null when it is not well-formed. */
export function parse(text) {
  const parsed = parser.parseFromString(text, "text/xml");
  const root = parsed.documentElement;
  if (!root || root.getElementsByTagName("parsererror").length) return null;
  return root;
}

// Elements of the stanza's own namespace may arrive with or without an explicit jabber:client
// declaration, so `null` here accepts either.
function matches(node, name, ns) {
  if (node.localName !== name) return false;
  if (ns === undefined) return true;
  if (ns === null) return node.namespaceURI === null || node.namespaceURI === NS.client;
  return node.namespaceURI === ns;
}

export function child(node, name, ns = null) {
  if (!node) return null;
  for (const item of node.children) if (matches(item, name, ns)) return item;
  return null;
}

export function children(node, name, ns = null) {
  if (!node) return [];
  return [...node.children].filter((item) => matches(item, name, ns));
}

export function text(node, name, ns = null) {
  const found = child(node, name, ns);
  return found ? found.textContent : null;
}
