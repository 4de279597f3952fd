"""Typed protocol errors: stream errors (RFC 6120 section 4.9) and stanza errors (section 8.3).

Code deep in a service raises one of these; the stream layer turns it into XML once, at the
boundary, and logs it there.
"""

from __future__ import annotations

from typing import Literal

ErrorType = Literal["auth", "cancel", "continue", "modify", "wait"]

STREAM_CONDITIONS = frozenset(
    {
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    }
)

# RFC 6120 section 8.3.3 gives each condition a usual error type.
STANZA_CONDITION_TYPES: dict[str, ErrorType] = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}


class StreamError(Exception):
    """Ends the stream with `<stream:error>`; the connection is closed after it is sent."""

    def __init__(self, condition: str, text: str | None = None) -> None:
        if condition not in STREAM_CONDITIONS:
            raise ValueError(f"unknown stream error condition {condition!r}")
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text


class StanzaError(Exception):
    """Answers one stanza with an error of the same kind; the stream goes on."""

    def __init__(
        self,
        condition: str,
        text: str | None = None,
        *,
        error_type: ErrorType | None = None,
        app_condition: tuple[str, str] | None = None,
    ) -> None:
        if condition not in STANZA_CONDITION_TYPES:
            raise ValueError(f"unknown stanza error condition {condition!r}")
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text
        self.error_type: ErrorType = error_type or STANZA_CONDITION_TYPES[condition]
        # An application-specific condition element, as (namespace, local name).
        self.app_condition = app_condition
