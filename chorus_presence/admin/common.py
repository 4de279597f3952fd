"""What every admin command shares: its error type, its registry entry, and reading the user
and contact names it is given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chorus_presence.server.components import Components
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError


class AdminError(Exception):
    """A refused admin request; the message is one line fit to show to the operator."""


@dataclass(frozen=True)
class Command:
    run: Callable[..., Awaitable[Any]]
    # True when the command needs only the database, not who is online, so the command line
    # may run it in-process while the server is stopped.
    offline_safe: bool = True


def user_jid(ctx: Components, text: str) -> JID:
    """The bare JID that USER names: a localpart, or a bare JID on this server's domain."""
    jid = _jid(text, ctx.domain)
    if jid.local is None:
        if jid.is_bare:
            raise AdminError(f"{jid} is a domain, not a user")
        raise AdminError(
            f"{text!r} is not a user: give a localpart (alice) or a bare JID (alice@{ctx.domain})"
        )
    if not jid.is_bare:
        raise AdminError(f"{text!r} is a full JID: give the bare JID {jid.bare}")
    if jid.domain != ctx.domain:
        raise AdminError(f"{jid} is not on this server's domain {ctx.domain}")
    return jid


async def existing_user(ctx: Components, text: str) -> JID:
    jid = user_jid(ctx, text)
    assert jid.local is not None
    if not await ctx.accounts.exists(jid.local):
        raise AdminError(f"No such user {jid}")
    return jid


async def existing_username(ctx: Components, text: str) -> str:
    """The normalised localpart of an existing account."""
    jid = await existing_user(ctx, text)
    assert jid.local is not None
    return jid.local


def contact_jid(ctx: Components, text: str) -> JID:
    """A contact's bare JID; a localpart alone names a user of this server."""
    jid = _jid(text, ctx.domain)
    if not jid.is_bare:
        raise AdminError(f"{text!r} is a full JID: give the bare JID {jid.bare}")
    return jid


def error_message(error: AdminError | StanzaError) -> str:
    """The one line the operator sees for a refused request."""
    if isinstance(error, StanzaError):
        return error.text or error.condition
    return str(error)


def is_localpart(text: str, domain: str) -> bool:
    """Whether `text`, as an operator types it, names a user of `domain` by its localpart."""
    # '@' and '/' cannot occur in a localpart, so without them the text is one; but the
    # server's own domain names the domain, as an operator who types it means.
    return "@" not in text and "/" not in text and text.lower() != domain


def _jid(text: str, domain: str) -> JID:
    localpart = is_localpart(text, domain)
    try:
        return JID(text, domain) if localpart else JID.parse(text)
    except JIDError as error:
        what = "username" if localpart else "JID"
        raise AdminError(f"{text!r} is not a valid {what}: {error}") from None
