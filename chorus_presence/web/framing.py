"""RFC 7395 framing: XMPP over WebSocket, translated to and from the byte stream the c2s stream
layer speaks, so a browser session is a session like any other.

Inbound, `<open/>` becomes a stream header and `<close/>` the closing tag; every other message
is a complete element and passes through as it is. Outbound, each write of the stream layer is
one element (or a header, or an error and the closing tag) and becomes one message.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from lxml import etree

from chorus_presence.xmpp import namespaces as ns

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)
_HEADER = re.compile(rb"^(?:<\?xml[^>]*\?>)?<stream:stream ([^>]*)>$", re.S)
_ATTRIBUTE = re.compile(rb"""([\w:]+)=(['"])(.*?)\2""", re.S)
_CLOSE = b"</stream:stream>"


def inbound(message: str) -> bytes:
    """A WebSocket text message from the client, as stream bytes."""
    stripped = message.strip()
    if stripped.startswith("<open"):
        return _open_to_header(stripped) or stripped.encode()
    if stripped.startswith("<close"):
        return _CLOSE
    return message.encode()


def outbound(data: bytes) -> list[str]:
    """What the stream layer wrote, as WebSocket text messages."""
    header = _HEADER.match(data)
    if header:
        attributes = {
            name.decode(): value.decode()
            for name, _quote, value in _ATTRIBUTE.findall(header[1])
            if name in (b"from", b"id", b"version", b"xml:lang")
        }
        rendered = " ".join(f"{name}={quoteattr(value)}" for name, value in attributes.items())
        return [f"<open xmlns='{FRAMING}' {rendered}/>"]
    messages = []
    if data.endswith(_CLOSE):
        data = data[: -len(_CLOSE)]
        closing = True
    else:
        closing = False
    if data.startswith(b"<stream:error>"):
        # Outside a <stream:stream> element the prefix must be declared on the error itself.
        data = b"<stream:error xmlns:stream='" + ns.STREAMS.encode() + b"'>" + data[14:]
    if data:
        messages.append(data.decode())
    if closing:
        messages.append(f"<close xmlns='{FRAMING}'/>")
    return messages


def _open_to_header(message: str) -> bytes | None:
    if "<!" in message or "<?" in message:
        # Left to the stream parser, which refuses such XML with the right stream error.
        return None
    try:
        node = etree.fromstring(message.encode(), _SAFE_PARSER)
    except etree.XMLSyntaxError:
        return None
    if node.tag != f"{{{FRAMING}}}open":
        return None
    attributes = [f"xmlns='{ns.CLIENT}'", f"xmlns:stream='{ns.STREAMS}'"]
    for name in ("to", "from", "version"):
        value = node.get(name)
        if value is not None:
            attributes.append(f"{name}={quoteattr(value)}")
    lang = node.get(ns.XML_LANG)
    if lang is not None:
        attributes.append(f"xml:lang={quoteattr(lang)}")
    return f"<stream:stream {' '.join(attributes)}>".encode()
