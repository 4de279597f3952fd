"""Incremental, hardened parsing of one inbound XMPP stream (RFC 6120 section 4 and 11).

This module owns the step from raw bytes to stream events: the stream header, each complete
top-level element (stanzas and negotiation elements such as <starttls/>), and the closing
tag. It also owns the defences that must sit in front of any XML parser facing the network:
restricted XML (no DTDs, comments, processing instructions or entity references other than
the predefined ones), a per-element byte cap, a nesting cap and an attribute cap, and the
namespace bindings XML Namespaces reserves (`xml`, `xmlns`), which libxml2 only logs. Every
problem surfaces as a StreamError; deciding what the stream says next is the caller's job.

libxml2 (through lxml's push parser) does the XML well-formedness work. Python only looks at
the bytes for the few things libxml2 would accept or act on: markup it must never see, and
where one top-level element ends so its size can be counted exactly.

A libxml2 push parser that has read anything holds several KiB of input buffers, a good part
of an idle session. So a stream that has been quiet between two top-level elements can park
its parser: the document is closed, which frees them, and the next `feed` starts a new one
with a stream header declaring the namespaces the client's header declared, the only state a
top-level element inherits from the stream; that costs about as much as 15 stanzas, once
per quiet spell.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from lxml import etree

from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.namespaces import STREAMS, qname

STREAM_TAG = qname(STREAMS, "stream")

_XML_WHITESPACE = b" \t\r\n"
_NOT_WHITESPACE = re.compile(rb"[^ \t\r\n]")
_LT = ord("<")
_UTF8_BOM = b"\xef\xbb\xbf"
_FOREIGN_BOMS = (b"\xfe\xff", b"\xff\xfe")
_BOMS = (_UTF8_BOM, *_FOREIGN_BOMS)
_XML_DECL_OPEN = b"<?xml"
_CDATA_OPEN = b"<![CDATA["
_CDATA_CLOSE = b"]]>"
# Everything restricted XML forbids announces itself with "<!" (DOCTYPE, ENTITY, comments;
# only CDATA sections are allowed), "<?" (processing instructions) or an "&" that does not
# start a character reference or one of the five predefined entity references.
_SUSPECT = re.compile(rb"<[!?]|&(?!#|lt;|gt;|amp;|quot;|apos;)")
_PREDEFINED_REFS = (b"lt;", b"gt;", b"amp;", b"quot;", b"apos;")
_LONGEST_REF = max(len(ref) for ref in _PREDEFINED_REFS)
# libxml2 refuses nesting past about 256 elements, root included, and reports it differently
# from one version to the next; stopping a little earlier keeps that a policy-violation.
_DEEPEST = 250
_ENCODING = re.compile(rb"[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*(['\"])(.*?)\1", re.DOTALL)
# XML Namespaces section 3 reserves the xml prefix for the XML namespace (and that namespace for
# it), and the xmlns prefix and namespace for declarations. libxml2 reports a declaration that
# breaks this (or an empty prefixed one) as this error, drops it and parses on.
_RESERVED_BINDING = etree.ErrorTypes.NS_ERR_XML_NAMESPACE


@dataclass(frozen=True, slots=True)
class StreamOpen:
    """The stream header, `<stream:stream ...>`, has been read."""

    tag: str
    attributes: dict[str, str]
    default_namespace: str | None
    prefix: str | None


@dataclass(frozen=True, slots=True)
class StreamClose:
    """The closing `</stream:stream>` has been read."""


Event = StreamOpen | etree._Element | StreamClose


class StreamParser:
    """Turns the bytes of one stream into events; one instance per stream (restart = new one).

    `max_stanza_bytes` caps the bytes of the current top-level element (or of everything up
    to the end of the stream header); whitespace between top-level elements is not counted.
    `max_depth` caps nesting below the stream root (a stanza is at depth 1; values above 250
    act as 250, because libxml2 stops near 256) and `max_attributes` the attributes on any
    one element.

    After `feed` raises, the stream is dead and the parser must not be fed again.
    """

    __slots__ = (
        "_at_start",
        "_between",
        "_closed",
        "_depth",
        "_end_marker",
        "_errors_seen",
        "_fed",
        "_held",
        "_in_cdata",
        "_in_end_tag",
        "_lxml_feed",
        "_lxml_parser",
        "_max_attributes",
        "_max_depth",
        "_read_events",
        "_reopen",
        "_root",
        "_unit_bytes",
        "max_stanza_bytes",
    )

    def __init__(self, *, max_stanza_bytes: int, max_depth: int, max_attributes: int) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self._max_depth = min(max_depth, _DEEPEST)
        self._max_attributes = max_attributes
        parser = _lxml_parser()
        self._lxml_parser = parser
        self._lxml_feed = parser.feed
        self._read_events = parser.read_events
        self._errors_seen = 0  # entries of libxml2's error log already looked at
        self._root: etree._Element | None = None
        # While parked: the stream header a new libxml2 parser starts from.
        self._reopen: bytes | None = None
        self._fed = False  # fed since the last `park_if_quiet`
        self._depth = 0  # open elements below the root
        self._between = False  # at top level, with nothing of the next element fed yet
        self._unit_bytes = 0  # bytes fed of the current top-level element (or the header)
        self._closed = False
        self._at_start = True  # the XML declaration is only allowed at the very beginning
        self._in_cdata = False
        self._held = b""  # an undecidable tail of the last chunk, completed by the next
        self._end_marker: bytes | None = None  # b"</name" of the open top-level element
        self._in_end_tag = False  # fed bytes may end inside that element's end tag

    def park_if_quiet(self) -> bool:
        """Park the parser if nothing was fed since the last call and the stream is between
        two top-level elements with nothing pending; whether it is parked now."""
        fed, self._fed = self._fed, False
        if self._reopen is not None:
            return True
        root = self._root
        if fed or root is None or not self._between or self._held or self._closed:
            return False
        self._reopen = _reopening_header(root)
        self._root = None
        # Closing an unfinished document always fails; what matters is that libxml2 lets
        # its input buffers go. The parser itself stays: every element it produced keeps it
        # alive anyway, and it starts a new document on the next feed.
        with contextlib.suppress(etree.XMLSyntaxError):
            self._lxml_parser.close()
        return True

    def _unpark(self, header: bytes) -> None:
        """Start the new document with a stream header like the one parked."""
        self._reopen = None
        self._lxml_feed(header)
        for _event, root in self._read_events():
            self._root = root
        self._errors_seen = len(self._lxml_parser.feed_error_log)

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next bytes; return the events they complete, in order."""
        self._fed = True
        if self._reopen is not None:
            self._unpark(self._reopen)
        if self._held:
            data = self._held + data
            self._held = b""
        if self._closed:
            if data.strip(_XML_WHITESPACE):
                raise StreamError("not-well-formed", "data after the end of the stream")
            return []
        limit, problem = self._scan(data)
        events: list[Event] = []
        pos = 0
        while pos < limit:
            if self._between:
                # Whitespace keepalives never reach libxml2, so the root never holds text.
                found = _NOT_WHITESPACE.search(data, pos, limit)
                if found is None:
                    break
                pos = found.start()
                # The scan lets "<!" through only for CDATA, which is text all the same.
                if data[pos] != _LT or data.startswith(b"<!", pos):
                    raise StreamError("not-well-formed", "text outside any element")
                self._between = False
                self._unit_bytes = 0
            end = self._slice_end(data, pos, limit)
            self._unit_bytes += end - pos
            if self._unit_bytes > self.max_stanza_bytes:
                raise StreamError("policy-violation", "element too large")
            try:
                self._lxml_feed(data[pos:end])
            except etree.XMLSyntaxError as exc:
                # The caps win: libxml2 may have gone past them before tripping over
                # something else, such as its own nesting limit.
                self._take_events([])
                raise StreamError("not-well-formed", exc.msg) from exc
            pos = end
            self._take_events(events)
            self._check_namespaces()
            if self._closed:
                if data[pos:].strip(_XML_WHITESPACE):
                    raise StreamError("not-well-formed", "data after the end of the stream")
                return events
        if problem is not None:
            raise problem
        self._held = data[limit:]
        return events

    def _slice_end(self, data: bytes, pos: int, limit: int) -> int:
        """Where the next slice for libxml2 ends.

        A slice never runs past the end of the current top-level element, so that element's
        byte count is exact and whatever follows it is looked at first. Until the element's
        start tag is complete, slices end at every ">". After that only its end tag can end
        it, so a slice runs up to the ">" after the next occurrence of that end tag's name (a
        nested element of the same name just costs one more slice) or, failing that, to the
        end of the data, short of a trailing partial name.
        """
        marker = self._end_marker
        if marker is None or self._in_end_tag:
            found = pos
        else:
            found = data.find(marker, pos, limit)
            if found < 0:
                tail = data.rfind(b"<", max(pos, limit - len(marker) + 1), limit)
                if tail < 0 or not marker.startswith(data[tail:limit]):
                    return limit
                found = tail
        close = data.find(b">", found, limit)
        # With no ">" yet, the next chunk's first ">" may be the one that ends the element.
        self._in_end_tag = marker is not None and close < 0
        return limit if close < 0 else close + 1

    def _take_events(self, out: list[Event]) -> None:
        for event, element in self._read_events():
            if event == "start":
                if self._root is None:
                    out.append(self._open(element))
                    continue
                self._depth += 1
                if self._depth > self._max_depth:
                    raise StreamError("policy-violation", "elements nested too deeply")
                self._check_names(element)
                if self._depth == 1:
                    prefix = element.prefix
                    name = _tag(element).rpartition("}")[2]
                    qualified = f"{prefix}:{name}" if prefix else name
                    self._end_marker = f"</{qualified}".encode()
            elif self._depth == 0:
                self._closed = True
                out.append(StreamClose())
            else:
                self._depth -= 1
                if self._depth == 0:
                    # A copy gets its own document and keeps the default namespace unprefixed,
                    # where moving the element out of the root would rename it "ns0:message".
                    # lxml's __copy__ is a deep copy.
                    out.append(copy.copy(element))
                    root = self._root
                    if root is None:
                        # Only a start event below the root brings the depth above zero.
                        raise RuntimeError("a top-level element ended with no stream root")
                    del root[0]
                    self._between = True
                    self._end_marker = None
                    self._in_end_tag = False

    def _check_namespaces(self) -> None:
        """Refuse what libxml2 only logs: a binding of a reserved prefix or namespace.

        RFC 6120 section 4.9.3.13 defines not-well-formed as a violation of the rules of XML
        or of XML Namespaces, which this is; invalid-namespace (4.9.3.10) is about the stream
        and content namespaces being the wrong ones, not about a declaration being illegal.
        """
        errors = self._lxml_parser.feed_error_log
        count = len(errors)
        if count == self._errors_seen:
            return
        seen, self._errors_seen = self._errors_seen, count
        for index in range(seen, count):
            if errors[index].type == _RESERVED_BINDING:
                raise StreamError("not-well-formed", errors[index].message)

    def _open(self, root: etree._Element) -> StreamOpen:
        tag = _tag(root)
        if tag != STREAM_TAG:
            raise StreamError(
                "invalid-namespace", "the root must be <stream> in the streams namespace"
            )
        self._check_names(root)
        self._root = root
        self._between = True
        return StreamOpen(
            tag=tag,
            attributes=dict(root.attrib),
            default_namespace=root.nsmap.get(None),
            prefix=root.prefix,
        )

    def _check_names(self, element: etree._Element) -> None:
        # libxml2 only warns about an undeclared prefix and keeps "prefix:name" as the name.
        tag = _tag(element)
        if tag[0] != "{" and ":" in tag:
            raise StreamError("not-well-formed", "undeclared namespace prefix")
        attributes = element.attrib
        if attributes:
            if len(attributes) > self._max_attributes:
                raise StreamError("policy-violation", "too many attributes")
            for name in attributes:
                if name[0] != "{" and ":" in name:
                    raise StreamError("not-well-formed", "undeclared namespace prefix")

    def _scan(self, data: bytes) -> tuple[int, StreamError | None]:
        """Find how much of `data` libxml2 may see, and what is wrong right after that.

        Returns (limit, problem). With no problem, bytes from limit on cannot be judged yet
        and wait for the next chunk; none of them can complete an event.
        """
        pos = 0
        if self._at_start:
            resume = self._skip_stream_start(data)
            if resume is None:
                return 0, None
            self._at_start = False
            pos = resume
        size = len(data)
        while True:
            if self._in_cdata:
                close = data.find(_CDATA_CLOSE, pos)
                if close < 0:
                    keep = 2 if data.endswith(b"]]") else 1 if data.endswith(b"]") else 0
                    return max(pos, size - keep), None
                self._in_cdata = False
                pos = close + len(_CDATA_CLOSE)
            match = _SUSPECT.search(data, pos)
            if match is None:
                # A final "<" might turn into "<!" or "<?".
                return (size - 1 if data.endswith(b"<") else size), None
            start = match.start()
            if data[start] == ord("&"):
                # A slice shorter than the longest reference means the data ends inside it.
                rest = data[start + 1 : start + 1 + _LONGEST_REF]
                if len(rest) < _LONGEST_REF and any(
                    ref.startswith(rest) for ref in _PREDEFINED_REFS
                ):
                    return start, None
                first = rest[:1]
                if first.isalpha() or first in (b"_", b":") or first >= b"\x80":
                    return start, StreamError("restricted-xml", "entity references are not allowed")
                return start, StreamError("not-well-formed", "bare '&'")
            head = data[start : start + len(_CDATA_OPEN)]
            if head == _CDATA_OPEN:
                self._in_cdata = True
                pos = start + len(_CDATA_OPEN)
                continue
            if len(head) < len(_CDATA_OPEN) and _CDATA_OPEN.startswith(head):
                return start, None
            return start, StreamError(
                "restricted-xml", "DTDs, comments and processing instructions are not allowed"
            )

    def _skip_stream_start(self, data: bytes) -> int | None:
        """Check what opens the stream; return where ordinary scanning starts, or None to wait.

        Only UTF-8 is accepted, so anything libxml2 would take for another encoding is refused
        here, and an XML declaration is read far enough to check its encoding.
        """
        if len(data) < len(_UTF8_BOM) and any(bom.startswith(data) for bom in _BOMS):
            return None
        start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
        head = data[start : start + len(_XML_DECL_OPEN) + 1]
        if not head:
            return None
        if head[0] in _XML_WHITESPACE:
            return start
        if head[0] != _LT:
            raise _bad_stream_start(data)
        if len(head) < 2:
            return None
        if head[1] == 0:
            raise StreamError("unsupported-encoding", "only UTF-8 is supported")
        if len(head) <= len(_XML_DECL_OPEN):
            return None if _XML_DECL_OPEN.startswith(head) else start
        if not (head.startswith(_XML_DECL_OPEN) and head[-1] in _XML_WHITESPACE):
            return start
        decl_end = data.find(b"?>", start)
        if decl_end < 0:
            if len(data) > self.max_stanza_bytes:
                raise StreamError("policy-violation", "XML declaration too large")
            return None
        encoding = _ENCODING.search(data, start, decl_end)
        if encoding is not None and encoding.group(2).lower() not in (b"utf-8", b"utf8"):
            raise StreamError("unsupported-encoding", "only UTF-8 is supported")
        return decl_end + 2


def _lxml_parser() -> etree.XMLPullParser:
    return etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _reopening_header(root: etree._Element) -> bytes:
    """A start tag for a new parser that puts what follows in the namespaces `root` declared.

    The root's attributes are left out: a top-level element inherits nothing else from it.
    """
    return _start_tag(root.prefix, tuple(root.nsmap.items()))


@functools.lru_cache(maxsize=64)
def _start_tag(prefix: str | None, namespaces: tuple[tuple[str | None, str], ...]) -> bytes:
    # Cached: nearly every client sends the same header, so parked streams share one copy.
    name = f"{prefix}:stream" if prefix else "stream"
    declarations = "".join(
        f" xmlns{f':{declared}' if declared else ''}={quoteattr(uri)}"
        for declared, uri in namespaces
    )
    return f"<{name}{declarations}>".encode()


def _tag(element: etree._Element) -> str:
    # The stubs also allow the bytes and QName a program may assign, but the tag of a parsed
    # element is always a str; comments and processing instructions never get this far.
    return str(element.tag)


def _bad_stream_start(data: bytes) -> StreamError:
    if data.startswith(_FOREIGN_BOMS) or data[:1] == b"\x00":
        return StreamError("unsupported-encoding", "only UTF-8 is supported")
    return StreamError("not-well-formed", "the stream must start with markup")
