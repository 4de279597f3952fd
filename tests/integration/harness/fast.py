"""SASL2 (XEP-0388) and FAST tokens (XEP-0484) spoken by hand over a raw socket, as a client
that keeps a token speaks them: a password login asking for a token, logins with a token (the
HT-SHA-256-NONE proofs computed here, independently of the server's code), and what the server
answered.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from lxml import etree
from scramp import ScramClient

from tests.integration.harness.constants import PASSWORD
from tests.integration.harness.raw import RawClient, starttls

if TYPE_CHECKING:
    from tests.integration.harness.server import Harness

SASL2 = "urn:xmpp:sasl:2"
FAST = "urn:xmpp:fast:0"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
HT = "HT-SHA-256-NONE"
CLIENT_ID = "0d3a6c52-1f7e-4b8a-9c21-5e4f3b2a1d09"
SOFTWARE = "Chorus tests"
DEVICE = "CI runner"
_OUTCOME = rb"<(success|failure)[ >].*?</\1>"


@dataclass
class Outcome:
    """How one `<authenticate/>` ended."""

    success: bool
    # The SASL condition of a failure.
    condition: str | None
    # The FAST token the success carried, and its expiry.
    token: str | None
    expiry: str | None
    identity: str | None
    additional_data: bytes
    # The stream features that followed a success (no restart in SASL2).
    features: bytes


async def secure(harness: Harness) -> RawClient:
    """A raw client past STARTTLS, its encrypted stream's features read and dropped."""
    raw = await harness.raw()
    await starttls(harness, raw)
    return raw


def authenticate(
    mechanism: str,
    initial: bytes | None,
    *,
    client_id: str | None = CLIENT_ID,
    request_token: bool = False,
    fast: bool = False,
    invalidate: bool = False,
    software: str = SOFTWARE,
    device: str = DEVICE,
) -> str:
    parts = [f"<authenticate xmlns='{SASL2}' mechanism={quoteattr(mechanism)}>"]
    if initial is not None:
        parts.append(f"<initial-response>{base64.b64encode(initial).decode()}</initial-response>")
    if client_id is not None:
        parts.append(
            f"<user-agent id={quoteattr(client_id)}><software>{escape(software)}</software>"
            f"<device>{escape(device)}</device></user-agent>"
        )
    if request_token:
        parts.append(f"<request-token xmlns='{FAST}' mechanism='{HT}'/>")
    if fast:
        flag = " invalidate='true'" if invalidate else ""
        parts.append(f"<fast xmlns='{FAST}'{flag}/>")
    parts.append("</authenticate>")
    return "".join(parts)


async def outcome(raw: RawClient) -> Outcome:
    """The success or failure that ends the exchange; after a success, the features too."""
    match = await raw.expect(_OUTCOME)
    node = etree.fromstring(match[0])
    raw.received = raw.received[match.end() :]
    if etree.QName(node).localname == "failure":
        condition = next(etree.QName(item).localname for item in node if item.tag != "text")
        return Outcome(False, condition, None, None, None, b"", b"")
    token = node.find(f"{{{FAST}}}token")
    data = node.findtext(f"{{{SASL2}}}additional-data")
    features = await raw.expect(rb"<stream:features.*?</stream:features>")
    raw.received = raw.received[features.end() :]
    return Outcome(
        True,
        None,
        token.get("token") if token is not None else None,
        token.get("expiry") if token is not None else None,
        node.findtext(f"{{{SASL2}}}authorization-identifier"),
        base64.b64decode(data) if data else b"",
        features[0],
    )


async def password_login(
    raw: RawClient,
    username: str,
    password: str = PASSWORD,
    *,
    request_token: bool = True,
    client_id: str | None = CLIENT_ID,
    device: str = DEVICE,
) -> Outcome:
    """SCRAM-SHA-256 in SASL2, asking for a token unless told not to; the server's final
    message is verified (a server that did not know the password fails the test)."""
    scram = ScramClient(["SCRAM-SHA-256"], username, password)
    raw.send(
        authenticate(
            "SCRAM-SHA-256",
            scram.get_client_first().encode(),
            client_id=client_id,
            request_token=request_token,
            device=device,
        )
    )
    challenge = await raw.expect(rb"<challenge[^>]*>([^<]*)</challenge>|<failure[ >].*?</failure>")
    if challenge[1] is None:
        return await outcome(raw)
    raw.received = raw.received[challenge.end() :]
    scram.set_server_first(base64.b64decode(challenge[1]).decode())
    final = base64.b64encode(scram.get_client_final().encode()).decode()
    raw.send(f"<response xmlns='{SASL2}'>{final}</response>")
    result = await outcome(raw)
    if result.success:
        scram.set_server_final(result.additional_data.decode())
    return result


def initiator_proof(token: str) -> bytes:
    return hmac.digest(token.encode(), b"Initiator", "sha256")


def responder_proof(token: str) -> bytes:
    return hmac.digest(token.encode(), b"Responder", "sha256")


async def token_login(
    raw: RawClient,
    username: str,
    token: str,
    *,
    client_id: str | None = CLIENT_ID,
    invalidate: bool = False,
    request_token: bool = False,
) -> Outcome:
    """A login with a FAST token by HT-SHA-256-NONE; a success must prove the server knew it."""
    raw.send(
        authenticate(
            HT,
            username.encode() + b"\0" + initiator_proof(token),
            client_id=client_id,
            fast=True,
            invalidate=invalidate,
            request_token=request_token,
        )
    )
    result = await outcome(raw)
    if result.success:
        assert hmac.compare_digest(result.additional_data, responder_proof(token)), result
    return result
