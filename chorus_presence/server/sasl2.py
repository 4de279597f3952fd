"""SASL2 (XEP-0388) with FAST (XEP-0484) on the c2s stream: the stream feature, reading an
`<authenticate/>`, running it, and the server's challenge, success and failure.

The mechanisms are those of RFC 6120 SASL (`sasl.py`) in SASL2's elements; authentication ends
without a stream restart, the authenticated stream's features following the success at once.
SASL2 is used here for tokens: the client's `<user-agent/>` id is the client a sign-in is kept
for, `<request-token/>` asks for a token after the login, and `<fast/>` logs in with one, by
HT-SHA-256-NONE. Neither Bind 2, tasks (`<continue/>`), hash upgrades nor channel binding is
offered: the client binds a resource as after RFC 6120 SASL.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, replace

from chorus_presence.server.sasl import SaslExchange, SaslFailure, SaslStep, TokenLogin
from chorus_presence.services import hashed_tokens
from chorus_presence.services.sign_ins import SignInService, label_of, timestamp
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element, serialize

FAST_MECHANISMS = (hashed_tokens.MECHANISM,)
# The longest client id (the user agent's, a UUID for well-behaved clients) accepted.
CLIENT_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Authenticate:
    """What an `<authenticate/>` asks for."""

    mechanism: str
    initial: bytes | None
    client_id: str | None
    label: str
    # The FAST mechanism a token is asked for, after this login.
    request_token: str | None
    # A login with a token (`<fast/>`), and whether the token is to be invalidated.
    fast: bool
    invalidate: bool


def feature(mechanisms: list[str]) -> Element:
    """The `<authentication/>` stream feature, with FAST inline."""
    authentication = element("authentication", namespace=ns.SASL2)
    for name in mechanisms:
        child(authentication, "mechanism", text=name)
    inline = child(authentication, "inline")
    fast = child(inline, "fast", namespace=ns.FAST)
    for name in FAST_MECHANISMS:
        child(fast, "mechanism", text=name)
    return authentication


def read_authenticate(node: Element, mechanisms: list[str]) -> Authenticate:
    """The request in `node`; SaslFailure when it cannot be served as it stands."""
    mechanism = node.get("mechanism", "")
    fast = node.find(ns.qname(ns.FAST, "fast"))
    if mechanism not in (FAST_MECHANISMS if fast is not None else mechanisms):
        raise SaslFailure("invalid-mechanism")
    request = node.find(ns.qname(ns.FAST, "request-token"))
    request_token = request.get("mechanism", "") if request is not None else None
    if request_token is not None and request_token not in FAST_MECHANISMS:
        raise SaslFailure("invalid-mechanism")
    agent = node.find(ns.qname(ns.SASL2, "user-agent"))
    client_id = agent.get("id") if agent is not None else None
    if client_id is not None and not 0 < len(client_id) <= CLIENT_ID_LENGTH:
        raise SaslFailure("malformed-request")
    if client_id is None and (fast is not None or request_token is not None):
        # XEP-0484: tokens are issued to, and only accepted from, a client that names itself.
        raise SaslFailure("malformed-request")
    return Authenticate(
        mechanism=mechanism,
        initial=_initial_response(node.find(ns.qname(ns.SASL2, "initial-response"))),
        client_id=client_id,
        label=label_of(
            agent.findtext(ns.qname(ns.SASL2, "software")) if agent is not None else None,
            agent.findtext(ns.qname(ns.SASL2, "device")) if agent is not None else None,
        ),
        request_token=request_token,
        fast=fast is not None,
        invalidate=fast is not None and fast.get("invalidate") in ("true", "1"),
    )


class Sasl2Exchange:
    """One `<authenticate/>` to its end: its mechanism's exchange, then the token asked for."""

    def __init__(
        self,
        request: Authenticate,
        exchange: Callable[[str, TokenLogin | None], SaslExchange],
        sign_ins: SignInService,
    ) -> None:
        self.request = request
        self._sign_ins = sign_ins
        tokens = None
        if request.fast and request.client_id is not None:
            tokens = TokenLogin(
                sign_ins,
                request.client_id,
                invalidate=request.invalidate,
                # Rotation at every use, but a token being invalidated has no successor
                # unless one is asked for.
                renew=not request.invalidate or request.request_token is not None,
            )
        self._exchange = exchange(request.mechanism, tokens)

    async def start(self) -> SaslStep:
        return await self._finish(await self._exchange.start(self.request.initial))

    async def respond(self, data: bytes) -> SaslStep:
        return await self._finish(await self._exchange.respond(data))

    def fail(self, condition: str) -> SaslStep:
        return self._exchange.fail(condition)

    async def _finish(self, step: SaslStep) -> SaslStep:
        request = self.request
        if step.kind != "success" or request.fast or request.request_token is None:
            return step
        # XEP-0484: only once the client is fully authenticated.
        assert step.username is not None and request.client_id is not None
        grant = await self._sign_ins.issue(
            step.username, request.client_id, request.label, request.request_token
        )
        return replace(step, grant=grant)


def challenge(data: bytes) -> bytes:
    return serialize(element("challenge", namespace=ns.SASL2, text=_encode(data)))


def success(step: SaslStep, domain: str) -> bytes:
    assert step.username is not None
    node = element("success", namespace=ns.SASL2)
    if step.data:
        child(node, "additional-data", text=_encode(step.data))
    child(node, "authorization-identifier", text=str(JID(step.username, domain)))
    token = step.grant.token if step.grant is not None else None
    if token is not None:
        child(
            node,
            "token",
            {"token": token.token, "expiry": timestamp(token.expires_at)},
            namespace=ns.FAST,
        )
    return serialize(node)


def failure(condition: str) -> bytes:
    node = element("failure", namespace=ns.SASL2)
    child(node, condition, namespace=ns.SASL)
    return serialize(node)


def _initial_response(node: Element | None) -> bytes | None:
    """XEP-0388: absent means no initial response; an empty element, an empty one."""
    if node is None:
        return None
    return _decode(node.text)


def _decode(text: str | None) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SaslFailure("incorrect-encoding") from exc


def decode_response(node: Element) -> bytes:
    """The data of a `<response/>`."""
    return _decode(node.text)


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode()
