"""JID parsing and preparation against RFC 7622, including the section 3.5 examples."""

# Look-alike characters (fullwidth letters, Greek sigma) are the point of several cases here.
# ruff: noqa: RUF001

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chorus_presence.xmpp.jid import (
    JID,
    MAX_PART_BYTES,
    JIDError,
    nameprep,
    nodeprep,
    resourceprep,
)

# RFC 7622 section 3.5.1, plus the canonical parts each one prepares to.
RFC_VALID = [
    ("juliet@example.com", "juliet", "example.com", None),
    ("juliet@example.com/foo", "juliet", "example.com", "foo"),
    ("juliet@example.com/foo bar", "juliet", "example.com", "foo bar"),
    ("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"),
    ("foo\\20bar@example.com", "foo\\20bar", "example.com", None),
    ("fussball@example.com", "fussball", "example.com", None),
    ("fußball@example.com", "fußball", "example.com", None),
    ("π@example.com", "π", "example.com", None),
    ("Σ@example.com/foo", "σ", "example.com", "foo"),
    ("σ@example.com/foo", "σ", "example.com", "foo"),
    ("ς@example.com/foo", "ς", "example.com", "foo"),
    ("king@example.com/♚", "king", "example.com", "♚"),
    ("example.com", None, "example.com", None),
    ("example.com/foobar", None, "example.com", "foobar"),
    ("a.example.com/b@example.net", None, "a.example.com", "b@example.net"),
]

# RFC 7622 section 3.5.2. "juliet@example.com/ foo" is missing on purpose: the OpaqueString
# profile allows a leading space and RFC 7622 erratum 4534 withdraws that example.
RFC_INVALID = [
    '"juliet"@example.com',
    "foo bar@example.com",
    "@example.com/",
    "henryⅣ@example.com",
    "♚@example.com",
    "juliet@",
    "/foobar",
]


@pytest.mark.parametrize(("text", "local", "domain", "resource"), RFC_VALID)
def test_rfc_valid_examples(
    text: str, local: str | None, domain: str, resource: str | None
) -> None:
    jid = JID.parse(text)
    assert (jid.local, jid.domain, jid.resource) == (local, domain, resource)
    assert JID.parse(str(jid)) == jid


@pytest.mark.parametrize("text", RFC_INVALID)
def test_rfc_invalid_examples(text: str) -> None:
    with pytest.raises(JIDError):
        JID.parse(text)


def test_resource_may_start_with_space() -> None:
    jid = JID.parse("juliet@example.com/ foo")
    assert jid.resource == " foo"
    assert str(jid) == "juliet@example.com/ foo"


def test_case_mapping() -> None:
    jid = JID.parse("Alice@Example.COM/Res")
    assert (jid.local, jid.domain, jid.resource) == ("alice", "example.com", "Res")
    assert JID.parse("henriettaLässig@example.com").local == "henriettalässig"
    assert JID.parse("ＡＬＩＣＥ@example.com").local == "alice"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@",
        "/",
        "@example.com",
        "example.com/",
        "a@",
        "a@/r",
        "a@example.com/",
        "a@b@example.com",
        "jul\x00iet@example.com",
        "juliet@example.com/fo\x07o",
        "juliet@example.com/fo\to",
        "juliet@exa mple.com",
        "juliet@example.com\t",
        "jul\ud800iet@example.com",
        # Width mapping must not let a forbidden character in through the back door.
        "a＠b@example.com",
        "a／b@example.com",
        "a&b@example.com",
        "a'b@example.com",
        "a:b@example.com",
        "a<b@example.com",
        "a>b@example.com",
    ],
)
def test_invalid_jids(text: str) -> None:
    with pytest.raises(JIDError):
        JID.parse(text)


def test_split_at_first_slash_then_first_at() -> None:
    jid = JID.parse("a@example.com/b@c/d")
    assert (jid.local, jid.domain, jid.resource) == ("a", "example.com", "b@c/d")
    jid = JID.parse("example.com//@")
    assert (jid.local, jid.domain, jid.resource) == (None, "example.com", "/@")


@pytest.mark.parametrize(
    ("domain", "prepared"),
    [
        ("EXAMPLE.COM.", "example.com"),
        ("localhost", "localhost"),
        ("a-b.example", "a-b.example"),
        ("ＥＸＡＭＰＬＥ。com", "example.com"),
        ("XN--BCHER-KVA.example", "bücher.example"),
        ("BÜCHER.example", "bücher.example"),
        ("bu\u0308cher.example", "bücher.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[2001:0DB8:0:0:0:0:0:1]", "[2001:db8::1]"),
    ],
)
def test_nameprep(domain: str, prepared: str) -> None:
    assert nameprep(domain) == prepared
    assert nameprep(prepared) == prepared
    assert JID.parse(domain) == JID.parse(prepared)


@pytest.mark.parametrize(
    "domain",
    [
        "",
        ".",
        "example..",
        "a..b",
        ".example",
        "-a.example",
        "a-.example",
        "_xmpp.example",
        "a b.example",
        "example.com:5222",
        "a" * 64,
        "xn--abc-.example",
        "a\u2024b.example",  # ONE DOT LEADER becomes '.' under NFKC
        "😀.example",
        "example.123",
        "1.2.3",
        "1.2.3.256",
        "01.2.3.4",
        "::1",
        "[::gg]",
        "[::1%eth0]",
        "[::1].",
    ],
)
def test_nameprep_rejects(domain: str) -> None:
    with pytest.raises(JIDError):
        nameprep(domain)


def test_nodeprep_and_resourceprep() -> None:
    assert nodeprep("Juliet") == "juliet"
    assert nodeprep("e\u0301") == "é"
    assert resourceprep("Foo Bar") == "Foo Bar"
    assert resourceprep("\u3000x") == " x"
    for bad in ("", "a b", "a@b", "a/b", '"', "Ⅳ"):
        with pytest.raises(JIDError):
            nodeprep(bad)
    for bad in ("", "\x00", "a\x7fb"):
        with pytest.raises(JIDError):
            resourceprep(bad)


def test_length_limits_count_prepared_utf8_bytes() -> None:
    assert nodeprep("a" * MAX_PART_BYTES) == "a" * MAX_PART_BYTES
    with pytest.raises(JIDError):
        nodeprep("a" * (MAX_PART_BYTES + 1))
    # 511 two-byte characters plus one byte is exactly the limit; composition happens first.
    assert nodeprep("e\u0301" * 511 + "a") == "é" * 511 + "a"
    with pytest.raises(JIDError):
        nodeprep("é" * 512)
    assert resourceprep("r" * MAX_PART_BYTES) == "r" * MAX_PART_BYTES
    with pytest.raises(JIDError):
        resourceprep("r" * (MAX_PART_BYTES + 1))
    with pytest.raises(JIDError):
        resourceprep("😀" * 256)
    domain = ".".join(["a" * 63] * 16)  # 16 * 63 + 15 dots = 1023 bytes
    assert nameprep(domain) == domain
    with pytest.raises(JIDError):
        nameprep(domain + "a")
    with pytest.raises(JIDError):
        JID.parse("x" * 100_000 + "@example.com")


def test_equality_and_hash_use_canonical_form() -> None:
    parsed = JID.parse("Alice@Example.COM./Res")
    built = JID("ALICE", "example.com", "Res")
    assert parsed == built
    assert hash(parsed) == hash(built)
    assert len({parsed, built, JID.parse("alice@example.com/Res")}) == 1
    assert JID.parse("a@example.com/R") != JID.parse("a@example.com/r")
    assert JID.parse("fussball@example.com") != JID.parse("fußball@example.com")
    assert JID.parse("ς@example.com") != JID.parse("σ@example.com")
    assert JID.parse("a@example.com") != JID.parse("example.com")


def test_direct_construction_validates() -> None:
    assert JID(None, "Example.com") == JID.parse("example.com")
    with pytest.raises(JIDError):
        JID("a b", "example.com")
    with pytest.raises(JIDError):
        JID("a", "")
    with pytest.raises(JIDError):
        JID("a", "example.com", "")


def test_bare_and_with_resource() -> None:
    full = JID.parse("juliet@example.com/balcony")
    bare = full.bare
    assert bare == JID.parse("juliet@example.com")
    assert bare.is_bare
    assert not full.is_bare
    assert bare.bare is bare
    assert str(bare) == "juliet@example.com"
    assert full.with_resource("orchard") == JID.parse("juliet@example.com/orchard")
    assert bare.with_resource("\u3000x").resource == " x"
    assert JID.parse("example.com").with_resource("r") == JID.parse("example.com/r")
    with pytest.raises(JIDError):
        bare.with_resource("")
    with pytest.raises(JIDError):
        bare.with_resource("\x00")


def test_str_is_canonical() -> None:
    assert str(JID.parse("Juliet@Example.COM/Balcony")) == "juliet@example.com/Balcony"
    assert str(JID.parse("EXAMPLE.com.")) == "example.com"
    assert str(JID.parse("example.com/a/b")) == "example.com/a/b"
    assert str(JID.parse("[::1]/r")) == "[::1]/r"


def test_immutable() -> None:
    jid = JID.parse("juliet@example.com")
    with pytest.raises(dataclasses.FrozenInstanceError):
        jid.local = "romeo"  # type: ignore[misc]


def test_jiderror_is_valueerror() -> None:
    with pytest.raises(ValueError):
        JID.parse("@")


def test_parse_is_cached_and_bounded() -> None:
    text = "cache-test@example.com/r"
    first = JID.parse(text)
    hits = JID.parse.cache_info().hits
    assert JID.parse(text) is first
    assert JID.parse.cache_info().hits == hits + 1
    assert JID.parse.cache_info().maxsize is not None


# Parts built mostly from characters that survive preparation, with some that do not, so a
# good share of the generated strings parse and the property has something to check.
_local_chars = st.sampled_from("abcXYZ09._-\\+éÉßσΣς") | st.characters(codec="utf-8")
_label = st.text(st.sampled_from("abcxyzXN019-ü"), min_size=1, max_size=10)
_domains = st.lists(_label, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    ["example.com", "127.0.0.1", "[::1]", "EXAMPLE.COM.", "xn--bcher-kva.example"]
)
_structured = st.builds(
    lambda local, domain, resource: (
        (f"{local}@" if local is not None else "")
        + domain
        + (f"/{resource}" if resource is not None else "")
    ),
    st.none() | st.text(_local_chars, min_size=1, max_size=12),
    _domains,
    st.none() | st.text(max_size=12),
)
_jid_like = _structured | st.text(st.sampled_from("ab@/.-É ") | st.characters(), max_size=20)


@given(_jid_like)
def test_parse_of_str_round_trips(text: str) -> None:
    try:
        jid = JID.parse(text)
    except JIDError:
        return
    again = JID.parse(str(jid))
    assert again == jid
    assert hash(again) == hash(jid)
    assert str(again) == str(jid)
