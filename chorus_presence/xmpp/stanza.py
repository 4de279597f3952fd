"""Builders for the XML the server sends: elements, IQ results, stanza and stream errors."""

from __future__ import annotations

from lxml import etree

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError, StreamError

Element = etree._Element

STANZA_KINDS = frozenset({"message", "presence", "iq"})


def element(
    tag: str,
    attrib: dict[str, str] | None = None,
    *,
    namespace: str = ns.CLIENT,
    text: str | None = None,
) -> Element:
    """A new element in `namespace`, declared as the default namespace so no prefix appears."""
    node = etree.Element(ns.qname(namespace, tag), nsmap={None: namespace})
    if attrib:
        for key, value in attrib.items():
            node.set(key, value)
    if text is not None:
        node.text = text
    return node


def child(
    parent: Element,
    tag: str,
    attrib: dict[str, str] | None = None,
    *,
    namespace: str | None = None,
    text: str | None = None,
) -> Element:
    """A sub-element; in the parent's namespace unless another is given."""
    parent_ns = etree.QName(parent).namespace or ns.CLIENT
    namespace = namespace or parent_ns
    nsmap = None if namespace == parent_ns else {None: namespace}
    node = etree.SubElement(parent, ns.qname(namespace, tag), nsmap=nsmap)
    if attrib:
        for key, value in attrib.items():
            node.set(key, value)
    if text is not None:
        node.text = text
    return node


def local_name(node: Element) -> str:
    return etree.QName(node).localname


def namespace_of(node: Element) -> str | None:
    return etree.QName(node).namespace


def serialize(node: Element) -> bytes:
    return etree.tostring(node, encoding="utf-8")


def iq_result(request: Element, payload: Element | None = None) -> Element:
    """The result for an IQ get or set, addressed back to its sender."""
    reply = element("iq", {"type": "result"})
    _address_reply(request, reply)
    if payload is not None:
        reply.append(payload)
    return reply


def error_reply(request: Element, error: StanzaError, *, from_: str | None = None) -> Element:
    """RFC 6120 section 8.3: the same kind of stanza, type error, addresses swapped, same id."""
    reply = element(local_name(request), {"type": "error"})
    _address_reply(request, reply, from_=from_)
    err = child(reply, "error", {"type": error.error_type})
    child(err, error.condition, namespace=ns.STANZA_ERRORS)
    if error.text:
        text = child(err, "text", namespace=ns.STANZA_ERRORS, text=error.text)
        text.set(ns.XML_LANG, "en")
    if error.app_condition is not None:
        namespace, name = error.app_condition
        child(err, name, namespace=namespace)
    return reply


def _address_reply(request: Element, reply: Element, *, from_: str | None = None) -> None:
    stanza_id = request.get("id")
    if stanza_id is not None:
        reply.set("id", stanza_id)
    sender = request.get("from")
    if sender:
        reply.set("to", sender)
    reply_from = from_ if from_ is not None else request.get("to")
    if reply_from:
        reply.set("from", reply_from)


def stream_error(error: StreamError) -> bytes:
    """`<stream:error>` followed by the stream's close tag."""
    text = ""
    if error.text:
        text = f"<text xmlns='{ns.STREAM_ERRORS}' xml:lang='en'>{_escape(error.text)}</text>"
    return (
        f"<stream:error><{error.condition} xmlns='{ns.STREAM_ERRORS}'/>{text}"
        "</stream:error></stream:stream>"
    ).encode()


def stream_header(*, domain: str, stream_id: str, to: str | None, lang: str = "en") -> bytes:
    """The server's stream header (RFC 6120 section 4.7), always version 1.0."""
    to_attr = f" to='{_escape(to)}'" if to else ""
    return (
        "<?xml version='1.0'?>"
        f"<stream:stream xmlns='{ns.CLIENT}' xmlns:stream='{ns.STREAMS}'"
        f" from='{_escape(domain)}' id='{stream_id}'{to_attr}"
        f" version='1.0' xml:lang='{_escape(lang)}'>"
    ).encode()


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )
