"""The inbound stream parser: incremental events, restricted XML, malformed input and the caps."""

from __future__ import annotations

import copy
import itertools
import resource
import select
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.namespaces import CLIENT, STREAMS, XML_LANG, qname
from chorus_presence.xmpp.parser import Event, StreamClose, StreamOpen, StreamParser

HEADER = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    b" to='example.com' version='1.0' xml:lang='en'>"
)
CLOSE = b"</stream:stream>"


def make_parser(
    max_stanza_bytes: int = 10_000, max_depth: int = 16, max_attributes: int = 32
) -> StreamParser:
    return StreamParser(
        max_stanza_bytes=max_stanza_bytes, max_depth=max_depth, max_attributes=max_attributes
    )


def feed_chunks(parser: StreamParser, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def shape(element: etree._Element) -> tuple[object, ...]:
    """An element's names, attributes and text, without serialisation's quirks.

    How non-ASCII attribute values come out of etree.tostring varies with the libxml2
    version and with the document an element sits in, so events are compared as trees.
    """
    return (
        element.tag,
        sorted(element.items()),
        element.text or "",
        [(shape(child), child.tail or "") for child in element],
    )


def describe(events: list[Event]) -> list[object]:
    """Comparable form of events."""
    return [shape(e) if isinstance(e, etree._Element) else e for e in events]


def stanzas(events: list[Event]) -> list[etree._Element]:
    return [event for event in events if isinstance(event, etree._Element)]


def condition_of(data: bytes | list[bytes], **limits: int) -> str:
    chunks = [data] if isinstance(data, bytes) else data
    with pytest.raises(StreamError) as caught:
        feed_chunks(make_parser(**limits), chunks)
    return caught.value.condition


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# Incremental behaviour


def test_header_becomes_stream_open() -> None:
    (event,) = make_parser().feed(HEADER)
    assert event == StreamOpen(
        tag=qname(STREAMS, "stream"),
        attributes={"to": "example.com", "version": "1.0", XML_LANG: "en"},
        default_namespace=CLIENT,
        prefix="stream",
    )


@pytest.mark.parametrize(
    "declaration",
    [
        b"<?xml version='1.0'?>",
        b"<?xml version='1.0' encoding='UTF-8'?>",
        b'<?xml version="1.0" encoding="utf-8" standalone="yes" ?>\n',
    ],
)
def test_xml_declaration_before_header_is_accepted(declaration: bytes) -> None:
    data = declaration + HEADER
    assert [type(e) for e in make_parser().feed(data)] == [StreamOpen]
    assert [type(e) for e in feed_chunks(make_parser(), bytewise(data))] == [StreamOpen]


def test_utf8_byte_order_mark_is_accepted() -> None:
    data = b"\xef\xbb\xbf<?xml version='1.0'?>" + HEADER
    assert [type(e) for e in feed_chunks(make_parser(), bytewise(data))] == [StreamOpen]


def test_every_event_comes_with_its_final_byte() -> None:
    stream = (
        b"<?xml version='1.0'?>" + HEADER + b"\n"
        b"<message to='a@b' id='1'><body>x &amp; y &#65;</body></message>"
        b"<presence/> \r\n\t<iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>"
        b"<message><forwarded xmlns='urn:xmpp:forward:0'><message><body>in</body></message>"
        b"</forwarded></message  >"
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + CLOSE
    )
    ends = [
        stream.index(HEADER) + len(HEADER),
        stream.index(b"</message>") + len(b"</message>"),
        stream.index(b"<presence/>") + len(b"<presence/>"),
        stream.index(b"</iq>") + len(b"</iq>"),
        stream.index(b"</message  >") + len(b"</message  >"),
        stream.index(b"tls'/>") + len(b"tls'/>"),
        len(stream),
    ]
    parser = make_parser()
    seen: list[tuple[int, Event]] = []
    for i in range(len(stream)):
        seen.extend((i + 1, event) for event in parser.feed(stream[i : i + 1]))
    assert [at for at, _ in seen] == ends
    assert isinstance(seen[0][1], StreamOpen)
    assert isinstance(seen[-1][1], StreamClose)
    assert describe([e for _, e in seen]) == describe(make_parser().feed(stream))


def test_stanza_split_inside_its_end_tag_still_arrives_alone() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    assert parser.feed(b"<message><body>hi</body></mess") == []
    assert parser.feed(b"age") == []
    first = parser.feed(b"><presence/><iq type='get' id='1'></i")
    assert [e.tag for e in stanzas(first)] == [qname(CLIENT, "message"), qname(CLIENT, "presence")]
    (iq,) = parser.feed(b"q>")
    assert iq.tag == qname(CLIENT, "iq")


def test_whitespace_keepalives_produce_nothing_and_are_not_counted() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    parser.max_stanza_bytes = 100
    for _ in range(1000):
        assert parser.feed(b" \r\n\t") == []
    (message,) = parser.feed(b"  <message/>" + b" " * 100_000)
    assert message.tag == qname(CLIENT, "message")


def test_elements_are_detached_with_namespaces_resolved() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    (message,) = parser.feed(
        b"<message to='a@b' xml:lang='de'><body>&lt;&gt;&amp;&quot;&apos; &#x41;&#66;</body>"
        b"<x:data xmlns:x='urn:x' x:attr='v'><![CDATA[<raw> & ]]]]></x:data></message>"
    )
    assert message.getparent() is None
    assert message.tail is None
    assert message.tag == qname(CLIENT, "message")
    assert message.get(XML_LANG) == "de"
    assert message.findtext(qname(CLIENT, "body")) == "<>&\"' AB"
    data = message.find("{urn:x}data")
    assert data is not None
    assert data.get("{urn:x}attr") == "v"
    assert data.text == "<raw> & ]]"
    assert etree.tostring(message) == (
        b'<message xmlns="jabber:client" to="a@b" xml:lang="de"><body>&lt;&gt;&amp;"\' AB</body>'
        b'<x:data xmlns:x="urn:x" x:attr="v">&lt;raw&gt; &amp; ]]</x:data></message>'
    )


def test_later_stanzas_keep_unprefixed_default_namespace() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    events = parser.feed(b"<presence/>" * 50)
    assert {etree.tostring(e) for e in stanzas(events)} == {b'<presence xmlns="jabber:client"/>'}


def test_stream_close_and_trailing_whitespace() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    assert parser.feed(b"<presence/>" + CLOSE + b"\n ")[-1] == StreamClose()
    assert parser.feed(b"  \n") == []


def test_self_closing_stream_header_opens_and_closes() -> None:
    events = make_parser().feed(HEADER[:-1] + b"/>")
    assert [type(e) for e in events] == [StreamOpen, StreamClose]


@pytest.mark.parametrize("after", [b"<presence/>", b"x", b"<!-- c -->", b"<?pi?>", b"&amp;"])
def test_data_after_stream_close_is_not_well_formed(after: bytes) -> None:
    assert condition_of(HEADER + CLOSE + b" " + after) == "not-well-formed"
    assert condition_of([HEADER + CLOSE, b" " + after]) == "not-well-formed"


def test_empty_feed_is_harmless() -> None:
    parser = make_parser()
    assert parser.feed(b"") == []
    parser.feed(HEADER)
    assert parser.feed(b"") == []


# The stream root


@pytest.mark.parametrize(
    "header",
    [
        b"<stream xmlns='jabber:client'>",
        b"<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>",
        b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
        b"<message xmlns='jabber:client'>",
        b"<stream>",
    ],
)
def test_root_must_be_stream_in_streams_namespace(header: bytes) -> None:
    assert condition_of(header) == "invalid-namespace"


def test_content_namespace_is_left_to_the_caller() -> None:
    header = (
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    (event,) = make_parser().feed(header)
    assert isinstance(event, StreamOpen)
    assert event.default_namespace == "jabber:server"


# Restricted XML (RFC 6120 section 11.1)

BILLION_LAUGHS = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    + b"".join(
        b"<!ENTITY lol%d '%s'>" % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
)

RESTRICTED_BEFORE_HEADER = [
    b"<!DOCTYPE stream:stream>",
    b"<!DOCTYPE s [<!ENTITY a 'b'>]>",
    b"<!DOCTYPE s SYSTEM 'file:///etc/passwd'>",
    b"<!-- comment -->",
    b"<?pi data?>",
    b"<?xml-stylesheet href='x'?>",
]

RESTRICTED_AFTER_HEADER = [
    b"<!DOCTYPE x>",
    b"<!ENTITY a 'b'>",
    b"<!-- comment -->",
    b"<?pi?>",
    b"<?xml version='1.0'?>",
    b"<message><!-- c --></message>",
    b"<message><?pi?></message>",
    b"<message><!DOCTYPE x></message>",
    b"<message><body>&foo;</body></message>",
    b"<message><body>&lol9;</body></message>",
    b"<message to='&foo;'/>",
    b"<message><body>&AMP;</body></message>",
    b"<message><body>&ampx;</body></message>",
    b"&nbsp;",
]


@pytest.mark.parametrize("prolog", RESTRICTED_BEFORE_HEADER)
def test_restricted_markup_before_header(prolog: bytes) -> None:
    for data in (prolog + HEADER, b"<?xml version='1.0'?>" + prolog + HEADER):
        assert condition_of(data) == "restricted-xml"
        assert condition_of(bytewise(data)) == "restricted-xml"


@pytest.mark.parametrize("content", RESTRICTED_AFTER_HEADER)
def test_restricted_markup_after_header(content: bytes) -> None:
    assert condition_of(HEADER + content) == "restricted-xml"
    assert condition_of([HEADER, *bytewise(content)]) == "restricted-xml"


def test_billion_laughs_is_refused_without_expansion() -> None:
    document = BILLION_LAUGHS + HEADER + b"<message><body>&lol9;</body></message>"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(100):
        assert condition_of(document) == "restricted-xml"
        assert condition_of([HEADER, b"<message>" + BILLION_LAUGHS + b"</message>"]) == (
            "restricted-xml"
        )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20_000


def test_external_entities_are_never_fetched() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x".encode()
        documents = [
            b"<!DOCTYPE s SYSTEM '" + url + b"'>" + HEADER,
            b"<!DOCTYPE s [<!ENTITY e SYSTEM '" + url + b"'>]>" + HEADER + b"<m>&e;</m>",
            b"<!DOCTYPE s [<!ENTITY % p SYSTEM '" + url + b"'> %p;]>" + HEADER,
            HEADER + b"<m><!DOCTYPE s [<!ENTITY e SYSTEM '" + url + b"'>]>&e;</m>",
        ]
        for document in documents:
            assert condition_of(document) == "restricted-xml"
        readable, _, _ = select.select([listener], [], [], 0.2)
        assert readable == []


def test_cdata_may_carry_anything_but_its_end() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    text = b"<!-- no --> <?no?> &foo; <!DOCTYPE x> ]] ]>"
    events = feed_chunks(
        parser, bytewise(b"<message><body><![CDATA[" + text + b"]]></body></message>")
    )
    (message,) = stanzas(events)
    assert message.findtext(qname(CLIENT, "body")) == text.decode()


def test_cdata_at_top_level_is_not_well_formed() -> None:
    assert condition_of(HEADER + b"<![CDATA[x]]>") == "not-well-formed"


# Malformed XML

MALFORMED_AFTER_HEADER = [
    b"<message></iq>",
    b"<message <body/></message>",
    b"<message to=a/>",
    b"<message to='a' to='b'/>",
    b"<message>\xff</message>",
    b"<message>\xc3</message>",
    b"<message>\x00</message>",
    b"<message>\x01</message>",
    b"<message>&#0;</message>",
    b"<message>a & b</message>",
    b"<message>]]></message>",
    b"hello",
    b"<presence/>text",
    b"</stream:stream><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
    b"</other>",
    b"<foo:bar/>",
    b"<message foo:bar='1'/>",
    b"<message><foo:bar/></message>",
    b"<1message/>",
]


@pytest.mark.parametrize("content", MALFORMED_AFTER_HEADER)
def test_malformed_xml_is_not_well_formed(content: bytes) -> None:
    # A stanza start tag completed by the next "<" is enough for libxml2 to judge it.
    assert condition_of(HEADER + content + b"<presence/>") == "not-well-formed"
    assert condition_of([HEADER, *bytewise(content + b"<presence/>")]) == "not-well-formed"


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"hello" + HEADER, "not-well-formed"),
        (b"x", "not-well-formed"),
        (b"<<" + HEADER, "not-well-formed"),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to=x>",
            "not-well-formed",
        ),
        (
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x:a=''>",
            "not-well-formed",
        ),
        (b"  <?xml version='1.0'?>" + HEADER, "restricted-xml"),
    ],
)
def test_malformed_stream_start(data: bytes, condition: str) -> None:
    assert condition_of(data) == condition
    assert condition_of(bytewise(data)) == condition


@pytest.mark.parametrize(
    "data",
    [
        b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER,
        b"<?xml version='1.0' encoding=\"UTF-16\"?>" + HEADER,
        b"<?xml version='1.0' encoding='bogus'?>" + HEADER,
        b"\xff\xfe" + HEADER.decode().encode("utf-16-le"),
        b"\xfe\xff" + HEADER.decode().encode("utf-16-be"),
        HEADER.decode().encode("utf-16-le"),
        HEADER.decode().encode("utf-16-be"),
    ],
)
def test_encodings_other_than_utf8_are_unsupported(data: bytes) -> None:
    assert condition_of(data) == "unsupported-encoding"
    assert condition_of(bytewise(data)) == "unsupported-encoding"


# Size, depth and attribute caps


def stanza_of_size(size: int) -> bytes:
    shell = b"<message><body></body></message>"
    return shell.replace(b"</body>", b"x" * (size - len(shell)) + b"</body>")


def test_stanza_may_reach_the_cap_but_not_exceed_it() -> None:
    cap = 500
    for chunks in ([stanza_of_size(cap)], bytewise(stanza_of_size(cap))):
        parser = make_parser(max_stanza_bytes=cap)
        parser.feed(HEADER)
        assert len(stanzas(feed_chunks(parser, chunks))) == 1
    assert condition_of([HEADER, stanza_of_size(cap + 1)], max_stanza_bytes=cap) == (
        "policy-violation"
    )


def test_cap_counts_each_element_not_each_chunk() -> None:
    parser = make_parser(max_stanza_bytes=200)
    parser.feed(HEADER)
    chunk = (stanza_of_size(200) + b"\n") * 1000
    assert len(parser.feed(chunk)) == 1000
    # Nested elements sharing the top-level name do not reset the count.
    nested = b"<message><message>" + b"x" * 200 + b"</message></message>"
    assert condition_of([HEADER, nested], max_stanza_bytes=200) == "policy-violation"


def test_oversized_stanza_is_refused_on_the_chunk_that_crosses_the_cap() -> None:
    parser = make_parser(max_stanza_bytes=10_000)
    parser.feed(HEADER + b"<message><body>")
    fed = len(b"<message><body>")
    chunk = b"y" * 1000
    while fed + len(chunk) <= 10_000:
        assert parser.feed(chunk) == []
        fed += len(chunk)
    with pytest.raises(StreamError) as caught:
        parser.feed(chunk)
    assert caught.value.condition == "policy-violation"


def test_oversized_data_never_reaches_libxml2(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = make_parser(max_stanza_bytes=65_536)
    parser.feed(HEADER)
    fed: list[int] = []
    feed_libxml2 = parser._lxml_feed

    def recording(data: bytes) -> None:
        fed.append(len(data))
        feed_libxml2(data)

    monkeypatch.setattr(parser, "_lxml_feed", recording)
    with pytest.raises(StreamError) as caught:
        parser.feed(b"<message><body>" + b"z" * 5_000_000)
    assert caught.value.condition == "policy-violation"
    assert sum(fed) <= 65_536


def test_raised_cap_applies_to_later_stanzas() -> None:
    parser = make_parser(max_stanza_bytes=300)
    parser.feed(HEADER)
    parser.max_stanza_bytes = 5000
    assert len(parser.feed(stanza_of_size(4000))) == 1


def test_header_is_capped_too() -> None:
    header = HEADER.replace(b"to='example.com'", b"to='" + b"a" * 1000 + b"'")
    assert condition_of(header, max_stanza_bytes=1000) == "policy-violation"
    assert condition_of(b" " * 2000 + HEADER, max_stanza_bytes=1000) == "policy-violation"
    assert condition_of(b"<?xml version='1.0'" + b" " * 2000, max_stanza_bytes=1000) == (
        "policy-violation"
    )
    assert [type(e) for e in make_parser(max_stanza_bytes=len(HEADER)).feed(HEADER)] == [StreamOpen]


def nested(depth: int) -> bytes:
    return b"<message>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</message>"


def test_depth_cap() -> None:
    parser = make_parser(max_depth=5)
    parser.feed(HEADER)
    assert len(parser.feed(nested(5))) == 1
    assert condition_of([HEADER, nested(6)], max_depth=5) == "policy-violation"
    assert condition_of([HEADER, *bytewise(nested(6))], max_depth=5) == "policy-violation"


@pytest.mark.parametrize("max_depth", [16, 5000])
def test_ten_thousand_levels_are_a_policy_violation(max_depth: int) -> None:
    # Past 256 levels libxml2 stops on its own; that too must read as policy-violation.
    deep = b"<message>" + b"<a>" * 10_000
    limits = {"max_stanza_bytes": 1_000_000, "max_depth": max_depth}
    assert condition_of([HEADER, deep], **limits) == "policy-violation"
    assert condition_of([HEADER, deep + b"</a>" * 10_000 + b"</message>"], **limits) == (
        "policy-violation"
    )


def with_attributes(count: int) -> bytes:
    return b"<message " + b" ".join(b"a%d='%d'" % (i, i) for i in range(count)) + b"/>"


def test_attribute_cap() -> None:
    parser = make_parser(max_attributes=8)
    parser.feed(HEADER)
    assert len(parser.feed(with_attributes(8))) == 1
    assert condition_of([HEADER, with_attributes(9)], max_attributes=8) == "policy-violation"
    child = b"<message><x " + b" ".join(b"b%d=''" % i for i in range(9)) + b"/></message>"
    assert condition_of([HEADER, child], max_attributes=8) == "policy-violation"


def test_ten_thousand_attributes_are_a_policy_violation() -> None:
    limits = {"max_stanza_bytes": 1_000_000, "max_attributes": 64}
    assert condition_of([HEADER, with_attributes(10_000)], **limits) == "policy-violation"
    header = HEADER[:-1] + b" " + b" ".join(b"h%d=''" % i for i in range(10_000)) + b">"
    assert condition_of(header, **limits) == "policy-violation"


# Properties

NAMES = st.sampled_from(["message", "presence", "iq", "body", "x", "item", "query", "m"])
# Characters XML 1.0 allows, written as raw UTF-8 or as references.
XML_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\ufffe\uffff",
        min_codepoint=0x20,
    )
    | st.sampled_from("\t\n<>&\"']"),
    max_size=12,
)


NAMED_REFERENCES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;"}


@st.composite
def escaped(draw: st.DrawFn, text: str, quote: str = "") -> bytes:
    style = draw(st.sampled_from(["named", "decimal", "hex"]))
    special = "<&" + quote + (">" if draw(st.booleans()) else "")
    out = []
    for char in text:
        if char not in special:
            out.append(char)
        elif style == "named":
            out.append(NAMED_REFERENCES[char])
        elif style == "decimal":
            out.append(f"&#{ord(char)};")
        else:
            out.append(f"&#x{ord(char):X};")
    return "".join(out).encode()


@st.composite
def element(draw: st.DrawFn, depth: int = 0) -> bytes:
    name = draw(NAMES)
    prefix = draw(st.sampled_from(["", "", "p"]))
    qualified = f"{prefix}:{name}" if prefix else name
    parts = [f"<{qualified}".encode()]
    if prefix:
        parts.append(f" xmlns:{prefix}='urn:p'".encode())
    elif draw(st.booleans()):
        parts.append(b" xmlns='urn:other'")
    for attribute in draw(st.lists(st.sampled_from(["to", "id", "type", "xml:lang"]), unique=True)):
        quote = draw(st.sampled_from(["'", '"']))
        value = draw(escaped(draw(XML_TEXT), quote))
        parts.append(f" {attribute}={quote}".encode() + value + quote.encode())
    children = draw(st.lists(element(depth + 1), max_size=2)) if depth < 2 else []
    text = draw(XML_TEXT)
    if not children and not text and draw(st.booleans()):
        parts.append(b"/>")
        return b"".join(parts)
    parts.append(b">")
    if text and "]]>" not in text and draw(st.booleans()):
        parts.append(b"<![CDATA[" + text.encode() + b"]]>")
    else:
        parts.append(draw(escaped(text)))
    parts.extend(children)
    parts.append(f"</{qualified}{draw(st.sampled_from(['', ' ']))}>".encode())
    return b"".join(parts)


@st.composite
def valid_stream(draw: st.DrawFn) -> bytes:
    parts = [
        draw(
            st.sampled_from(
                [b"", b"<?xml version='1.0'?>", b"<?xml version='1.0' encoding='UTF-8'?>\n"]
            )
        )
    ]
    parts.append(HEADER)
    for stanza in draw(st.lists(element(), min_size=1, max_size=4)):
        parts.append(draw(st.sampled_from([b"", b" ", b"\n", b"\r\n\t "])))
        parts.append(stanza)
    if draw(st.booleans()):
        parts.append(CLOSE)
    return b"".join(parts)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({cut % (len(data) + 1) for cut in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(valid_stream(), st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_yields_the_same_events(stream: bytes, cuts: list[int]) -> None:
    whole = make_parser().feed(stream)
    assert isinstance(whole[0], StreamOpen)
    # The same elements as a plain parse of the whole document gives.
    document = etree.fromstring(stream if stream.endswith(CLOSE) else stream + CLOSE)
    assert describe(stanzas(whole)) == [shape(copy.deepcopy(child)) for child in document]
    split = feed_chunks(make_parser(), split_at(stream, cuts))
    assert describe(split) == describe(whole)


# Pieces of markup, good and bad, that random bytes would rarely hit on their own.
FRAGMENTS = st.sampled_from(
    [
        *b"""< > / /> </ a x: = ' " & ; &amp; &# &#x41; &lt <! <? <![CDATA[ ]]> ] \x00 \xff \xc3
        message <message> </message> xmlns='urn:x' xmlns:x='urn:x' <!-- --> <!DOCTYPE
        </stream:stream>""".split(),
        b" ",
        b"\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.binary(max_size=200), st.lists(FRAGMENTS, max_size=40).map(b"".join)),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_arbitrary_bytes_after_header_raise_only_stream_errors(
    garbage: bytes, cuts: list[int]
) -> None:
    parser = make_parser(max_stanza_bytes=1000, max_depth=4, max_attributes=4)
    parser.feed(HEADER)
    try:
        for chunk in split_at(garbage, cuts):
            parser.feed(chunk)
    except StreamError:
        pass


# Parking: a quiet stream lets its libxml2 parser go


def feed_parking(parser: StreamParser, chunks: list[bytes]) -> list[Event]:
    """Feed the chunks, parking the parser wherever it can be between two of them."""
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
        parser.park_if_quiet()
        parser.park_if_quiet()
    return events


@settings(max_examples=200, deadline=None)
@given(valid_stream(), st.lists(st.integers(min_value=0), max_size=40))
def test_parking_between_any_chunks_yields_the_same_events(stream: bytes, cuts: list[int]) -> None:
    whole = make_parser().feed(stream)
    parked = feed_parking(make_parser(), split_at(stream, cuts))
    assert describe(parked) == describe(whole)
    assert [etree.tostring(e) for e in stanzas(parked)] == [
        etree.tostring(e) for e in stanzas(whole)
    ]


def test_a_parked_parser_keeps_the_header_namespaces() -> None:
    header = HEADER.replace(b" to=", b" xmlns:x='urn:x&amp;y' to=")
    stanza = b"<message to='a@b'><x:data x:attr='v'/></message>"
    parser = make_parser()
    parser.feed(header)
    assert parser.park_if_quiet() is False  # fed since the last look
    assert parser.park_if_quiet() is True
    (message,) = parser.feed(stanza)
    assert etree.tostring(message) == (
        b'<message xmlns="jabber:client" xmlns:x="urn:x&amp;y" to="a@b">'
        b'<x:data x:attr="v"/></message>'
    )
    assert etree.tostring(message) == etree.tostring(make_parser().feed(header + stanza)[1])


def test_a_stream_inside_an_element_is_never_parked() -> None:
    parser = make_parser()
    parser.feed(HEADER + b"<message><body>half")
    assert parser.park_if_quiet() is False
    assert parser.park_if_quiet() is False
    (message,) = parser.feed(b" done</body></message>")
    assert message.findtext(qname(CLIENT, "body")) == "half done"


def test_a_stream_with_an_undecided_tail_is_never_parked() -> None:
    parser = make_parser()
    parser.feed(HEADER + b"<presence/><")
    parser.park_if_quiet()
    assert parser.park_if_quiet() is False
    (presence,) = parser.feed(b"presence type='unavailable'/>")
    assert presence.get("type") == "unavailable"


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"<message xmlns:xml='urn:not-xml'/>", "not-well-formed"),
        (b"<message><!-- c --></message>", "restricted-xml"),
        (b"<message>" + b"z" * 20_000 + b"</message>", "policy-violation"),
        (b"<y:message/>", "not-well-formed"),
        (b"</message>", "not-well-formed"),
    ],
)
def test_a_parked_parser_refuses_what_any_parser_refuses(data: bytes, condition: str) -> None:
    parser = make_parser()
    parser.feed(HEADER + b"<presence/>")
    parser.park_if_quiet()
    assert parser.park_if_quiet() is True
    with pytest.raises(StreamError) as caught:
        parser.feed(data)
    assert caught.value.condition == condition


def test_a_parked_parser_reads_the_stream_close() -> None:
    parser = make_parser()
    parser.feed(HEADER)
    parser.park_if_quiet()
    assert parser.park_if_quiet() is True
    assert parser.feed(b" " + CLOSE) == [StreamClose()]
    assert parser.park_if_quiet() is False
