"""XEP-0004 data forms: building forms, reading them back, and checking submissions."""

from __future__ import annotations

import pytest
from lxml import etree

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, Form, Option
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, serialize

XD = f"{{{ns.DATA_FORMS}}}"
COLOURS = (Option("red", "Red"), Option("green", "Green"), Option("blue", "Blue"))

EVERY_TYPE = Form(
    (
        Field("fixed", value="Section one"),
        Field("hidden", "FORM_TYPE", value="urn:example:settings"),
        Field("boolean", "enabled", "Enabled", value=True, desc="Turns it on", required=True),
        Field("list-single", "colour", "Colour", value="green", options=COLOURS),
        Field("list-multi", "colours", "Colours", value=["red", "blue"], options=COLOURS),
        Field("text-single", "name", "Name", value="Alice"),
        Field("text-private", "secret", "Secret", value="s3cret"),
        Field("text-multi", "about", "About", value="line one\nline two"),
        Field("jid-single", "friend", "Friend", value=JID.parse("bob@example.com")),
        Field(
            "jid-multi",
            "friends",
            "Friends",
            value=[JID.parse("bob@example.com"), JID.parse("carol@example.com")],
        ),
    ),
    title="Settings",
    instructions="Fill this in.\nOr not.",
)


def submission(*fields: tuple[str, list[str]], form_type: str = "submit") -> Element:
    """A submitted form, as a client sends it: each field's var and its <value/> texts."""
    form = etree.Element(f"{XD}x", nsmap={None: ns.DATA_FORMS})
    form.set("type", form_type)
    for var, values in fields:
        node = etree.SubElement(form, f"{XD}field", var=var)
        for text in values:
            etree.SubElement(node, f"{XD}value").text = text
    return form


def test_form_xml_has_every_part() -> None:
    form = EVERY_TYPE.to_element()
    assert form.tag == f"{XD}x" and form.get("type") == "form"
    assert form.findtext(f"{XD}title") == "Settings"
    assert form.findtext(f"{XD}instructions") == "Fill this in.\nOr not."
    fields = form.findall(f"{XD}field")
    assert [f.get("type") for f in fields] == [f.type for f in EVERY_TYPE.fields]
    fixed, _hidden, enabled, colour, colours, *_rest, about, _friend, friends = fields
    assert fixed.get("var") is None and fixed.findtext(f"{XD}value") == "Section one"
    assert enabled.get("label") == "Enabled"
    assert enabled.findtext(f"{XD}desc") == "Turns it on"
    assert enabled.find(f"{XD}required") is not None
    assert [v.text for v in enabled.findall(f"{XD}value")] == ["1"]
    assert colour.find(f"{XD}required") is None
    options = [(o.get("label"), o.findtext(f"{XD}value")) for o in colour.findall(f"{XD}option")]
    assert options == [("Red", "red"), ("Green", "green"), ("Blue", "blue")]
    assert [v.text for v in colours.findall(f"{XD}value")] == ["red", "blue"]
    assert [v.text for v in about.findall(f"{XD}value")] == ["line one", "line two"]
    assert [v.text for v in friends.findall(f"{XD}value")] == [
        "bob@example.com",
        "carol@example.com",
    ]
    # One namespace declaration at the top, nothing prefixed.
    assert serialize(form).count(b"xmlns") == 1


def test_form_round_trips_through_xml() -> None:
    assert Form.from_element(EVERY_TYPE.to_element()) == EVERY_TYPE
    unset = Form((Field("boolean", "b"), Field("list-single", "c", options=COLOURS)))
    assert Form.from_element(unset.to_element()) == unset


def test_submission_of_the_defaults_gives_them_back_typed() -> None:
    shown = EVERY_TYPE
    submitted = submission(
        *((field.var, field.wire_values()) for field in shown.fields if field.var is not None)
    )
    assert shown.parse_submission(submitted) == {
        "FORM_TYPE": "urn:example:settings",
        "enabled": True,
        "colour": "green",
        "colours": ["red", "blue"],
        "name": "Alice",
        "secret": "s3cret",
        "about": "line one\nline two",
        "friend": JID.parse("bob@example.com"),
        "friends": [JID.parse("bob@example.com"), JID.parse("carol@example.com")],
    }


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("true", True), ("0", False), ("false", False)]
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    form = Form((Field("boolean", "b"),))
    assert form.parse_submission(submission(("b", [text]))) == {"b": expected}


def test_left_out_and_unknown_fields() -> None:
    form = Form(
        (
            Field("fixed", value="Heading"),
            Field("boolean", "b", value=True),
            Field("list-multi", "m", options=COLOURS),
            Field("text-single", "t"),
        )
    )
    # Left out: not in the result. Unknown: ignored. A list-multi with no value: nothing chosen.
    values = form.parse_submission(submission(("m", []), ("other", ["x"]), ("t", [""])))
    assert values == {"m": [], "t": ""}


def test_list_multi_and_jid_multi_drop_repeats_and_normalise_jids() -> None:
    form = Form((Field("list-multi", "m", options=COLOURS), Field("jid-multi", "j")))
    submitted = submission(
        ("m", ["blue", "red", "blue"]), ("j", ["Bob@Example.com", "bob@example.com"])
    )
    assert form.parse_submission(submitted) == {
        "m": ["blue", "red"],
        "j": [JID.parse("bob@example.com")],
    }


def test_list_single_without_options_takes_any_value() -> None:
    form = Form((Field("list-single", "free"),))
    assert form.parse_submission(submission(("free", ["anything"]))) == {"free": "anything"}


BAD = Form(
    (
        Field("boolean", "b", "Bee"),
        Field("list-single", "one", "One colour", options=COLOURS),
        Field("list-multi", "many", options=COLOURS),
        Field("jid-single", "who", "Who"),
        Field("jid-multi", "whom"),
        Field("text-single", "t"),
    )
)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((("b", ["yes"]),), "Bee: expected true or false"),
        ((("b", ["1", "0"]),), "Bee: only one value is allowed"),
        ((("one", ["purple"]),), "One colour: 'purple' is not one of the choices"),
        ((("many", ["red", "purple"]),), "many: 'purple' is not one of the choices"),
        ((("who", ["@example.com"]),), "Who: '@example.com' is not a valid JID"),
        ((("whom", ["bob@example.com", "a@b@c"]),), "whom: 'a@b@c' is not a valid JID"),
        ((("t", ["a", "b"]),), "t: only one value is allowed"),
        ((("b", ["1"]), ("b", ["1"])), "Field 'b' is submitted twice"),
    ],
)
def test_bad_values_name_the_field(fields: tuple[tuple[str, list[str]], ...], message: str) -> None:
    with pytest.raises(StanzaError) as raised:
        BAD.parse_submission(submission(*fields))
    assert raised.value.condition == "bad-request"
    assert raised.value.text == message


@pytest.mark.parametrize(
    "fields",
    [(), (("must", []),), (("must", [""]),), (("pick", []),), (("must", ["x"]), ("pick", []))],
)
def test_required_fields(fields: tuple[tuple[str, list[str]], ...]) -> None:
    form = Form(
        (
            Field("text-single", "must", "Must", required=True),
            Field("list-multi", "pick", "Pick", options=COLOURS, required=True),
        )
    )
    with pytest.raises(StanzaError) as raised:
        form.parse_submission(submission(*fields))
    assert raised.value.condition == "bad-request"
    assert raised.value.text in ("Must: a value is required", "Pick: a value is required")
    filled = submission(("must", ["x"]), ("pick", ["red"]))
    assert form.parse_submission(filled) == {"must": "x", "pick": ["red"]}


@pytest.mark.parametrize("form_type", ["form", "cancel", "result"])
def test_only_a_submitted_form_is_read(form_type: str) -> None:
    with pytest.raises(StanzaError, match="Expected a submitted form"):
        BAD.parse_submission(submission(("t", ["x"]), form_type=form_type))
    not_a_form = etree.Element("{urn:example}x", type="submit")
    with pytest.raises(StanzaError, match="Expected a submitted form"):
        BAD.parse_submission(not_a_form)


def test_malformed_form_definitions() -> None:
    defined = Form((Field("list-single", "c", options=COLOURS),)).to_element()
    defined.find(f"{XD}field").set("type", "colour")
    with pytest.raises(StanzaError, match="unknown field type 'colour'"):
        Form.from_element(defined)
    defaulted = Form((Field("list-single", "c", options=COLOURS),)).to_element()
    etree.SubElement(defaulted.find(f"{XD}field"), f"{XD}value").text = "purple"
    with pytest.raises(StanzaError, match="'purple' is not one of the choices"):
        Form.from_element(defaulted)
    with pytest.raises(StanzaError, match="Expected a jabber:x:data form"):
        Form.from_element(etree.Element("{urn:example}x"))


def test_field_and_form_invariants() -> None:
    with pytest.raises(ValueError, match="needs a var"):
        Field("text-single")
    with pytest.raises(ValueError, match="cannot have options"):
        Field("text-single", "t", options=COLOURS)
    with pytest.raises(ValueError, match="unknown data form field type"):
        Field("colour", "c")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        Form((Field("boolean", "b"), Field("text-single", "b")))
