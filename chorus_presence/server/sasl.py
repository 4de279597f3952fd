"""SASL authentication (RFC 6120 section 6): SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN, and
HT-SHA-256-NONE for the tokens of XEP-0484 (offered through SASL2 only, see sasl2.py).

One `SaslExchange` per `<auth/>` or `<authenticate/>`. SCRAM is done by `scramp`; this module
fetches the account's stored keys first (the database is async, scramp's callback is not), and
unknown users get a deterministic fake salt, by the same work, so that they cannot be told
apart from real ones. A token is checked by the sign-ins service, which knows which client it
was issued to.

The failed-login throttles count an attempt before anything about its password is checked (the
PLAIN check, the SCRAM salt): guesses sent together are all counted, and a SCRAM exchange given
up after the server's first message (`<abort/>`, or a dropped connection) stays a failure.
Only a success gives the attempt back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from scramp import ScramException, ScramMechanism

from chorus_presence.core.limits import Attempt, LoginGuard
from chorus_presence.services import hashed_tokens
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.sign_ins import Grant, SignInService
from chorus_presence.xmpp.jid import JIDError, nodeprep

if TYPE_CHECKING:
    # scramp does not export the class its make_server returns.
    from scramp.core import ScramServer

log = logging.getLogger(__name__)

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")


@dataclass(frozen=True, slots=True)
class SaslStep:
    """One server answer: a challenge, success (with the authenticated user) or a failure."""

    kind: str
    data: bytes = b""
    condition: str = ""
    username: str | None = None
    attempted_user: str | None = None
    # The throttles already know of this failure; the stream must not count it again.
    counted: bool = False
    # On success, the sign-in the stream is under (XEP-0484), with the token it was given.
    grant: Grant | None = None


class SaslFailure(Exception):
    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


def offered_mechanisms(*, plain_allowed: bool) -> list[str]:
    return [*SCRAM_MECHANISMS, "PLAIN"] if plain_allowed else list(SCRAM_MECHANISMS)


@dataclass(frozen=True, slots=True)
class TokenLogin:
    """What a login with a token needs besides its SASL message: the client the token was
    issued to, and what becomes of the token (XEP-0484: rotated, or invalidated)."""

    sign_ins: SignInService
    client_id: str
    invalidate: bool = False
    renew: bool = True


class SaslExchange:
    """Drives one mechanism from the client's first message to success or failure."""

    def __init__(
        self,
        mechanism: str,
        *,
        accounts: AccountService,
        domain: str,
        secret: bytes,
        throttle: LoginGuard,
        address: str,
        tokens: TokenLogin | None = None,
    ) -> None:
        self.mechanism = mechanism
        self._tokens = tokens
        self._throttle = throttle
        self._address = address
        self._accounts = accounts
        self._domain = domain
        self._secret = secret
        self._scram: ScramServer | None = None
        self._username: str | None = None
        # The throttles' count of this attempt, from just before its password is looked at.
        self._attempt: Attempt | None = None

    async def start(self, initial: bytes | None) -> SaslStep:
        if initial is None:
            # Neither mechanism sends anything first from the server: ask for the client's message.
            return SaslStep("challenge")
        return await self.respond(initial)

    async def respond(self, data: bytes) -> SaslStep:
        try:
            if self.mechanism == "PLAIN":
                return await self._plain(data)
            if self.mechanism == hashed_tokens.MECHANISM:
                return await self._hashed_token(data)
            if self._scram is None:
                return await self._scram_first(data)
            return self._scram_final(self._scram, data)
        except SaslFailure as failure:
            return self.fail(failure.condition)

    def fail(self, condition: str) -> SaslStep:
        """End the exchange with `condition`, telling the throttles.

        An attempt already counted stays counted, whatever the condition, `aborted` included.
        Before that, a failure counts against the address only, and neither a refusal by the
        throttles nor an abort (nothing was tried) counts at all.
        """
        counted = True
        if self._attempt is not None:
            self._attempt.failed()
            self._attempt = None
        elif condition not in ("temporary-auth-failure", "aborted"):
            self._throttle.address_failed(self._address)
        else:
            counted = False
        return SaslStep(
            "failure", condition=condition, attempted_user=self._username, counted=counted
        )

    async def _begin(self, username: str) -> None:
        """Count the attempt before its password is looked at, or refuse it unchecked."""
        self._attempt = await self._throttle.admit(username, self._address)
        if self._attempt is None:
            raise SaslFailure("temporary-auth-failure")

    def _succeeded(self, username: str | None, data: bytes = b"") -> SaslStep:
        if self._attempt is not None:
            self._attempt.succeeded()
            self._attempt = None
        return SaslStep("success", data, username=username)

    async def _plain(self, data: bytes) -> SaslStep:
        parts = data.split(b"\0")
        if len(parts) != 3:
            raise SaslFailure("malformed-request")
        authzid, authcid, password = (self._decode(part) for part in parts)
        username = self._username = self._prepare_username(authcid)
        await self._begin(username)
        if not password or not await self._accounts.check_plain(username, password):
            raise SaslFailure("not-authorized")
        self._check_authzid(authzid, username)
        return self._succeeded(username)

    async def _hashed_token(self, data: bytes) -> SaslStep:
        """draft-schmaus-kitten-sasl-ht: authcid NUL HMAC(token, "Initiator"), one message."""
        raw_username, separator, proof = data.partition(b"\0")
        if not separator or not proof or self._tokens is None:
            raise SaslFailure("malformed-request")
        tokens = self._tokens
        username = self._username = self._prepare_username(self._decode(raw_username))
        await self._begin(username)
        redemption = await tokens.sign_ins.redeem(
            username,
            tokens.client_id,
            self.mechanism,
            proof,
            invalidate=tokens.invalidate,
            renew=tokens.renew,
        )
        if redemption is None:
            raise SaslFailure("not-authorized")
        if redemption.expired:
            # XEP-0484: a token no longer trusted fails so; the client logs in another way.
            raise SaslFailure("credentials-expired")
        return replace(self._succeeded(username, redemption.responder), grant=redemption.grant)

    async def _scram_first(self, data: bytes) -> SaslStep:
        message = self._decode(data)
        authzid, raw_username = _parse_client_first(message)
        username = self._username = self._prepare_username(raw_username)
        self._check_authzid(authzid, username)
        await self._begin(username)
        credentials = await self._accounts.scram_exchange_credentials(
            username, self.mechanism, self._secret
        )
        auth_info = (
            credentials.salt,
            credentials.stored_key,
            credentials.server_key,
            credentials.iterations,
        )
        server = ScramMechanism(self.mechanism).make_server(lambda _name: auth_info)
        try:
            server.set_client_first(message)
            challenge = server.get_server_first()
        except ScramException as exc:
            raise SaslFailure("malformed-request") from exc
        self._scram = server
        return SaslStep("challenge", challenge.encode())

    def _scram_final(self, server: ScramServer, data: bytes) -> SaslStep:
        try:
            server.set_client_final(self._decode(data))
            final = server.get_server_final()
        except ScramException as exc:
            raise SaslFailure("not-authorized") from exc
        return self._succeeded(self._username, final.encode())

    def _prepare_username(self, raw: str) -> str:
        try:
            username = nodeprep(raw)
        except JIDError as exc:
            raise SaslFailure("not-authorized") from exc
        return username

    def _check_authzid(self, authzid: str, username: str) -> None:
        if authzid and authzid != f"{username}@{self._domain}":
            raise SaslFailure("invalid-authzid")

    @staticmethod
    def _decode(data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SaslFailure("malformed-request") from exc


def _parse_client_first(message: str) -> tuple[str, str]:
    """(authzid, username) from a SCRAM client-first-message (RFC 5802 section 7)."""
    parts = message.split(",", 3)
    if len(parts) < 4 or parts[0] not in ("n", "y") or not parts[2].startswith("n="):
        # 'p' would ask for channel binding, which is not offered.
        raise SaslFailure("malformed-request")
    authzid = parts[1]
    if authzid and not authzid.startswith("a="):
        raise SaslFailure("malformed-request")
    return _unescape(authzid[2:]), _unescape(parts[2][2:])


def _unescape(value: str) -> str:
    return value.replace("=2C", ",").replace("=3D", "=")
