"""The choices of list fields: what every client can show, and open choices (XEP-0122)."""

from __future__ import annotations

import pytest
from lxml import etree

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, Form, Option
from chorus_presence.xmpp.stanza import Element

XD = f"{{{ns.DATA_FORMS}}}"
VALIDATE = f"{{{ns.DATA_FORMS_VALIDATE}}}validate"
SIZES = (Option("s", "Small"), Option("l", "Large"))


def submission(var: str, *values: str) -> Element:
    form = etree.Element(f"{XD}x", nsmap={None: ns.DATA_FORMS}, type="submit")
    field = etree.SubElement(form, f"{XD}field", var=var)
    for text in values:
        etree.SubElement(field, f"{XD}value").text = text
    return form


@pytest.mark.parametrize(
    ("value", "label", "message"),
    [
        ("", "Nothing", "an option needs a value"),
        ("  ", "Spaces", "an option needs a value"),
        ("x", "", "option 'x' needs a label"),
        ("x", " ", "option 'x' needs a label"),
    ],
)
def test_an_option_has_a_value_and_a_label(value: str, label: str, message: str) -> None:
    # An empty <value/> in an option crashes profanity 0.13; a missing label shows nothing.
    with pytest.raises(ValueError, match=message):
        Option(value, label)


def test_choices_are_distinct_and_defaults_among_them() -> None:
    with pytest.raises(ValueError, match="offers 's' twice"):
        Field("list-single", "size", "Size", options=(*SIZES, Option("s", "Also small")))
    with pytest.raises(ValueError, match="default 'm' is not one of its choices"):
        Field("list-single", "size", "Size", value="m", options=SIZES)
    with pytest.raises(ValueError, match="default 'm' is not one of its choices"):
        Field("list-multi", "sizes", "Sizes", value=["s", "m"], options=SIZES)
    with pytest.raises(ValueError, match="only a list field"):
        Field("text-single", "t", "T", open=True)


def test_every_option_on_the_wire_has_a_label_and_a_value() -> None:
    form = Form(
        (
            Field("list-single", "size", "Size", value="s", options=SIZES),
            Field("list-multi", "sizes", "Sizes", value=[], options=SIZES),
        )
    ).to_element()
    choices = form.findall(f"{XD}field/{XD}option")
    assert [(o.get("label"), o.findtext(f"{XD}value")) for o in choices] == [
        ("Small", "s"),
        ("Large", "l"),
    ] * 2


def test_open_choices_take_other_values() -> None:
    """XEP-0122 <open/>: the options are suggestions; whoever reads the values checks them."""
    shown = Form((Field("list-single", "size", "Size", value="xl", options=SIZES, open=True),))
    node = shown.to_element().find(f"{XD}field")
    validate = node.find(VALIDATE)
    assert validate is not None and validate.get("datatype") == "xs:string"
    assert validate.find(f"{{{ns.DATA_FORMS_VALIDATE}}}open") is not None
    assert Form.from_element(shown.to_element()) == shown
    assert shown.parse_submission(submission("size", "xxl")) == {"size": "xxl"}
    closed = Form((Field("list-single", "size", "Size", options=SIZES),))
    assert Form.from_element(closed.to_element()).fields[0].open is False
    with pytest.raises(StanzaError, match="Size: 'xxl' is not one of the choices"):
        closed.parse_submission(submission("size", "xxl"))
