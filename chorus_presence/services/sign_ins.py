"""Sign-ins: clients that stay logged in with server-issued tokens instead of the password
(XEP-0484 FAST, mechanism HT-SHA-256-NONE), and urn:chorus:sign-ins:0, the IQs that list and
revoke them.

A client gets a token by asking for one when it logs in with its password. Each use of a token
returns its successor (rotation): the token used stays good until the successor is used, so a
client that lost the answer carrying it still gets in, and then every older one is refused.
Every token expires `[auth] sign_in_lifetime` seconds after it was issued: a client in use
stays signed in, one left alone for that long is signed out. Revoking a sign-in deletes it and
ends, at once, every stream that logged in with it or was given its token.

Only the server's own streams are known here: `attach` when one logs in under a sign-in,
`detach` when it ends.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import ANSWERED, IqRequest, SignInsRevoked
from chorus_presence.services import hashed_tokens
from chorus_presence.storage.interfaces import SignInStore
from chorus_presence.storage.sign_ins import SignIn
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError, StreamError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

LIST = ns.qname(ns.CHORUS_SIGN_INS, "sign-ins")
REVOKE = ns.qname(ns.CHORUS_SIGN_INS, "revoke")
# Sign-ins one account keeps; a new one beyond it pushes out the least recently used.
MAX_SIGN_INS = 100
# The longest label kept of what a client says it is.
LABEL_LENGTH = 100
UNKNOWN_CLIENT = "Unknown client"


class Closable(Protocol):
    def close(self, error: StreamError | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token, the one time it is known: it goes to the client and nowhere else."""

    token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Grant:
    """The sign-in a login is under, and the token it was given, if any."""

    sign_in: str
    label: str
    token: IssuedToken | None


@dataclass(frozen=True, slots=True)
class Redemption:
    """A token presented that is one of the client's: the proof to answer with and, unless it
    had expired or was invalidated, the sign-in the login is under, with the next token."""

    responder: bytes
    expired: bool
    grant: Grant | None


def timestamp(at: float) -> str:
    """XEP-0082 DateTime, to the second."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def label_of(software: str | None, device: str | None) -> str:
    """What a client calls itself (the SASL2 user agent) as one line of bounded length: the
    device first, which tells a user's browsers and phones apart, e.g. "Firefox on Linux
    (Chorus portal)"."""
    device, software = (" ".join((part or "").split()) for part in (device, software))
    both = f"{device} ({software})" if device and software else None
    text = both or device or software or UNKNOWN_CLIENT
    return text if len(text) <= LABEL_LENGTH else text[: LABEL_LENGTH - 1] + "…"


class SignInService:
    def __init__(
        self,
        store: SignInStore,
        bus: Bus,
        *,
        domain: str,
        lifetime: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._bus = bus
        self._domain = domain
        self._lifetime = lifetime
        self._clock = clock
        # stream -> (username, sign-in id), for the streams of this server logged in under one.
        self._live: dict[Closable, tuple[str, str]] = {}

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.CHORUS_SIGN_INS))
        bus.on(topics.iq("get", "bare", LIST), self._list)
        bus.on(topics.iq("set", "bare", REVOKE), self._revoke)
        bus.on(topics.SIGN_INS_REVOKED, self._end_streams)

    # Tokens

    async def issue(self, username: str, client_id: str, label: str, mechanism: str) -> Grant:
        """After a password login that asked for a token: the client's sign-in, created or
        given a new token in place of all it had."""
        now = self._clock()
        issued = self._new_token(now)
        sign_in = await self.store.start(
            username,
            client_id,
            new_id=secrets.token_hex(6),
            label=label,
            mechanism=mechanism,
            token=hashed_tokens.stored(issued.token, issued.expires_at),
            now=now,
            keep=MAX_SIGN_INS,
        )
        return Grant(sign_in, label, issued)

    async def redeem(
        self,
        username: str,
        client_id: str,
        mechanism: str,
        proof: bytes,
        *,
        invalidate: bool = False,
        renew: bool = True,
    ) -> Redemption | None:
        """A login with a token: None when `proof` is not that of one of the client's tokens.
        Unless it expired, the client gets the next token (`renew`), or, with `invalidate`
        and no renewal, its sign-in ends here."""
        now = self._clock()
        issued = self._new_token(now) if renew else None
        use = await self.store.use(
            username,
            client_id,
            mechanism,
            hashed_tokens.verifier(proof),
            now=now,
            replacement=(hashed_tokens.stored(issued.token, issued.expires_at) if issued else None),
            invalidate=invalidate,
        )
        if use is None:
            return None
        if use.expired or (invalidate and issued is None):
            return Redemption(use.responder, use.expired, None)
        return Redemption(use.responder, False, Grant(use.sign_in, use.label, issued))

    def _new_token(self, now: float) -> IssuedToken:
        return IssuedToken(hashed_tokens.new_token(), now + self._lifetime)

    # Listing and revoking

    async def of_account(self, username: str) -> list[SignIn]:
        """The account's sign-ins with a token left, most recently used first."""
        return await self.store.of_account(username, self._clock())

    async def revoke(self, username: str, ids: Iterable[str] | None = None) -> list[SignIn]:
        """End the account's sign-ins named by `ids`, or all: their tokens log nobody in any
        more, and the streams logged in under them end now, on every node. Those ended."""
        revoked = await self.store.revoke(username, ids)
        labels = tuple((sign_in.id, sign_in.label) for sign_in in revoked)
        if labels:
            await self._bus.notify(topics.SIGN_INS_REVOKED, SignInsRevoked(username, labels))
        return revoked

    def _end_streams(self, event: SignInsRevoked) -> None:
        username, labels = event.username, dict(event.labels)
        user = JID(username, self._domain)
        for stream, (owner, sign_in) in list(self._live.items()):
            if owner == username and sign_in in labels:
                # not-authorized: what logged the client in no longer does; it must not retry.
                text = f"The sign-in {labels[sign_in]!r} of {user} was revoked"
                stream.close(StreamError("not-authorized", text))

    # This server's streams

    def attach(self, stream: Closable, username: str, sign_in: str) -> None:
        self._live[stream] = (username, sign_in)

    def detach(self, stream: Closable) -> None:
        self._live.pop(stream, None)

    def hand_over(self, successor: Closable, session: Closable) -> None:
        """`session` goes on over the connection `successor` logged in on (a resumption): it
        is under `successor`'s sign-in now, or none."""
        self._live.pop(session, None)
        held = self._live.pop(successor, None)
        if held is not None:
            self._live[session] = held

    def sign_in_of(self, stream: Closable) -> str | None:
        held = self._live.get(stream)
        return held[1] if held else None

    # urn:chorus:sign-ins:0

    async def _list(self, request: IqRequest) -> Element:
        username = request.own_account("sign-ins", "listed or revoked")
        current = self.sign_in_of(request.bound_session)
        result = element("sign-ins", namespace=ns.CHORUS_SIGN_INS)
        for sign_in in await self.of_account(username):
            attributes = {
                "id": sign_in.id,
                "label": sign_in.label,
                "created": timestamp(sign_in.created_at),
                "last-used": timestamp(sign_in.last_used_at),
                "expires": timestamp(sign_in.expires_at),
            }
            if sign_in.id == current:
                attributes["current"] = "true"
            child(result, "sign-in", attributes)
        return request.reply(result)

    async def _revoke(self, request: IqRequest) -> bool:
        username = request.own_account("sign-ins", "listed or revoked")
        wanted = request.payload.get("id", "")
        if not wanted:
            raise StanzaError("bad-request", "Name the sign-in to revoke in the id attribute")
        if not any(sign_in.id == wanted for sign_in in await self.of_account(username)):
            raise StanzaError("item-not-found", f"No sign-in {wanted!r} for {request.user}")
        # Answered first: the asking stream may be one of those revoking ends.
        request.session.send(request.reply())
        await self.revoke(username, [wanted])
        return ANSWERED
