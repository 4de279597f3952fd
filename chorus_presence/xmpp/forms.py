"""XEP-0004 data forms: the forms the server shows and the typed values it reads back.

This module owns the `jabber:x:data` wire format on the server side: building a form from
fields of the XEP-0004 types (with labels, descriptions, options, default values and the
required flag), reading a form's definition back from its XML, and checking a submitted form
against the form that was shown, which yields typed values. A submission that does not fit
raises `StanzaError('bad-request')` with a text naming the field, for the user's client to show.

Every form built here is one any client can show: each option has a value and a label, a list
offers each value once, and a list's default is among its choices. A list whose choices are
only suggestions says so with XEP-0122's `<open/>`; its values are then checked by whoever
reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast, get_args

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, child, element

FieldType = Literal[
    "boolean",
    "fixed",
    "hidden",
    "jid-multi",
    "jid-single",
    "list-multi",
    "list-single",
    "text-multi",
    "text-private",
    "text-single",
]
FIELD_TYPES: frozenset[str] = frozenset(get_args(FieldType))
LIST_TYPES = frozenset({"list-multi", "list-single"})
# Types whose several <value/>s are the lines of one text.
LINES_TYPES = frozenset({"fixed", "text-multi"})

# A field's value, typed by its field type: bool for boolean, JID for jid-single, lists for the
# -multi types, str otherwise (for text-multi and fixed, the lines joined by newlines).
FieldValue = bool | str | JID | list[str] | list[JID]

X = ns.qname(ns.DATA_FORMS, "x")
FIELD = ns.qname(ns.DATA_FORMS, "field")
VALUE = ns.qname(ns.DATA_FORMS, "value")
OPTION = ns.qname(ns.DATA_FORMS, "option")
TITLE = ns.qname(ns.DATA_FORMS, "title")
INSTRUCTIONS = ns.qname(ns.DATA_FORMS, "instructions")
DESC = ns.qname(ns.DATA_FORMS, "desc")
REQUIRED = ns.qname(ns.DATA_FORMS, "required")
VALIDATE = ns.qname(ns.DATA_FORMS_VALIDATE, "validate")
OPEN = ns.qname(ns.DATA_FORMS_VALIDATE, "open")

_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a list field: the value submitted and the label shown."""

    value: str
    label: str

    def __post_init__(self) -> None:
        # profanity 0.13 crashes on an option whose <value/> is empty.
        if not self.value.strip():
            raise ValueError("an option needs a value: an empty one crashes some clients")
        if not self.label.strip():
            raise ValueError(f"option {self.value!r} needs a label")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a form; `value` is the default shown, typed as `FieldValue` says.
    `open` makes a list's options suggestions: any value is accepted (XEP-0122 `<open/>`)."""

    type: FieldType
    var: str | None = None
    label: str | None = None
    value: FieldValue | None = None
    options: tuple[Option, ...] = ()
    required: bool = False
    desc: str | None = None
    open: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown data form field type {self.type!r}")
        # XEP-0004 section 3.2: only a fixed field may go without a name.
        if self.var is None and self.type != "fixed":
            raise ValueError(f"a {self.type} field needs a var")
        if self.options and self.type not in LIST_TYPES:
            raise ValueError(f"a {self.type} field cannot have options")
        if self.open and self.type not in LIST_TYPES:
            raise ValueError(f"only a list field has open choices, not a {self.type} field")
        choices = [option.value for option in self.options]
        for value in choices:
            if choices.count(value) > 1:
                raise ValueError(f"{self.title} offers {value!r} twice")
        if self.options and not self.open:
            # Some clients (profanity) show a list's choices only next to a default among them.
            for value in self.wire_values():
                if value not in choices:
                    raise ValueError(f"{self.title}: default {value!r} is not one of its choices")

    @property
    def title(self) -> str:
        """How error texts name the field: its label as the user saw it, else its var."""
        return self.label or self.var or self.type

    def wire_values(self) -> list[str]:
        value = self.value
        if value is None:
            return []
        if isinstance(value, bool):
            return ["1" if value else "0"]
        if isinstance(value, list):
            return [str(item) for item in value]
        if self.type in LINES_TYPES:
            return str(value).split("\n")
        return [str(value)]

    def typed(self, values: list[str]) -> FieldValue | None:
        """The typed value of this field's `<value/>` texts; None when a single-valued field
        has none. Raises bad-request for a value the field cannot take."""
        if self.type in LINES_TYPES:
            return "\n".join(values) if values else None
        if self.type == "jid-multi":
            # Repeats are found after preparation: Bob@Example.com is bob@example.com.
            return list(dict.fromkeys(self._jid(text) for text in values))
        if self.type == "list-multi":
            for text in values:
                self._check_option(text)
            return list(dict.fromkeys(values))
        if len(values) > 1:
            raise StanzaError("bad-request", f"{self.title}: only one value is allowed")
        if not values:
            return None
        text = values[0]
        if self.type == "boolean":
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise StanzaError("bad-request", f"{self.title}: expected true or false")
        if self.type == "jid-single":
            return self._jid(text)
        if self.type == "list-single":
            self._check_option(text)
        return text

    def _jid(self, text: str) -> JID:
        try:
            return JID.parse(text)
        except JIDError as exc:
            raise StanzaError("bad-request", f"{self.title}: {text!r} is not a valid JID") from exc

    def _check_option(self, text: str) -> None:
        if self.options and not self.open and text not in {o.value for o in self.options}:
            raise StanzaError("bad-request", f"{self.title}: {text!r} is not one of the choices")


@dataclass(frozen=True, slots=True)
class Form:
    """A form to fill in (`type='form'`), and the rules its submission is checked against."""

    fields: tuple[Field, ...]
    title: str | None = None
    instructions: str | None = None

    def __post_init__(self) -> None:
        names = [field.var for field in self.fields if field.var is not None]
        if len(names) != len(set(names)):
            raise ValueError("field vars must be unique within a form")

    def to_element(self) -> Element:
        form = element("x", {"type": "form"}, namespace=ns.DATA_FORMS)
        if self.title is not None:
            child(form, "title", text=self.title)
        if self.instructions is not None:
            child(form, "instructions", text=self.instructions)
        for field in self.fields:
            node = child(form, "field", {"type": field.type})
            if field.var is not None:
                node.set("var", field.var)
            if field.label is not None:
                node.set("label", field.label)
            if field.desc is not None:
                child(node, "desc", text=field.desc)
            if field.required:
                child(node, "required")
            for text in field.wire_values():
                child(node, "value", text=text)
            for option in field.options:
                choice = child(node, "option")
                choice.set("label", option.label)
                child(choice, "value", text=option.value)
            if field.open:
                validate = child(
                    node, "validate", {"datatype": "xs:string"}, namespace=ns.DATA_FORMS_VALIDATE
                )
                child(validate, "open")
        return form

    @classmethod
    def from_element(cls, form: Element) -> Form:
        """The form a `<x xmlns='jabber:x:data'/>` describes; bad-request if it is malformed."""
        if form.tag != X:
            raise StanzaError("bad-request", "Expected a jabber:x:data form")
        try:
            fields = tuple(_field_from_element(node) for node in form.findall(FIELD))
            instructions = [node.text or "" for node in form.findall(INSTRUCTIONS)]
            return cls(
                fields,
                title=form.findtext(TITLE),
                instructions="\n".join(instructions) if instructions else None,
            )
        except ValueError as exc:
            raise StanzaError("bad-request", f"Malformed form: {exc}") from exc

    def parse_submission(self, submitted: Element) -> dict[str, FieldValue]:
        """The typed values of a submitted form (`type='submit'`) answering this form.

        Fields the submission leaves out are left out of the result, so a client that sends
        only what the user changed changes nothing else. Fields this form does not have, and
        fixed fields, are ignored. A required field left out or empty, a value outside a
        list's choices, a bad JID or boolean, or a second value for a single-valued field
        raises bad-request.
        """
        if submitted.tag != X or submitted.get("type") != "submit":
            raise StanzaError("bad-request", "Expected a submitted form (type='submit')")
        # Field already refuses a non-fixed field without a var; this only narrows the type.
        by_var = {
            field.var: field
            for field in self.fields
            if field.type != "fixed" and field.var is not None
        }
        values: dict[str, FieldValue] = {}
        seen: set[str] = set()
        for node in submitted.findall(FIELD):
            var = node.get("var")
            if var is None or var not in by_var:
                continue
            if var in seen:
                raise StanzaError("bad-request", f"Field {var!r} is submitted twice")
            seen.add(var)
            value = by_var[var].typed([text.text or "" for text in node.findall(VALUE)])
            if value is not None:
                values[var] = value
        for var, field in by_var.items():
            if field.required and values.get(var) in (None, "", []):
                raise StanzaError("bad-request", f"{field.title}: a value is required")
        return values


def _field_from_element(node: Element) -> Field:
    field_type = node.get("type", "text-single")
    if field_type not in FIELD_TYPES:
        raise ValueError(f"unknown field type {field_type!r}")
    options = tuple(
        Option(option.findtext(VALUE) or "", option.get("label") or "")
        for option in node.findall(OPTION)
    )
    shape = Field(
        cast(FieldType, field_type),
        var=node.get("var"),
        label=node.get("label"),
        options=options,
        required=node.find(REQUIRED) is not None,
        desc=node.findtext(DESC),
        open=node.find(f"{VALIDATE}/{OPEN}") is not None,
    )
    # Only direct <value/> children: an option's own <value/> belongs to the option.
    return replace(shape, value=shape.typed([value.text or "" for value in node.findall(VALUE)]))
