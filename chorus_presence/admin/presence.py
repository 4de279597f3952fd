"""Admin commands on live state: who is online and how (presence show), the sessions (list,
kick) and the server's counters (stats). All need the running server.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from chorus_presence.admin.common import AdminError, Command, existing_user, user_jid
from chorus_presence.core.metrics import KINDS
from chorus_presence.server.components import Components
from chorus_presence.services.rich_states import SHOW, STATUS
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID, JIDError

if TYPE_CHECKING:
    from chorus_presence.server.c2s import ClientStream


async def show(ctx: Components, user: str | None = None) -> object:
    """One user's resources and effective state; without a user, every user online."""
    if user is not None:
        return _presence_of(ctx, await existing_user(ctx, user))
    online = sorted({s.jid.bare for s in ctx.sessions.all() if s.jid is not None}, key=str)
    return [_presence_of(ctx, jid) for jid in online]


async def session_list(ctx: Components) -> list[dict[str, object]]:
    streams = sorted(_streams(ctx), key=lambda stream: str(stream.jid))
    return [_session(ctx, stream) for stream in streams]


async def session_kick(ctx: Components, jid: str) -> dict[str, list[str]]:
    """End one session (a full JID) or every session of an account (a bare JID)."""
    target = _session_jid(ctx, jid)
    if target.is_bare:
        sessions = ctx.sessions.of_account(target)
    else:
        found = ctx.sessions.get(target)
        sessions = [found] if found is not None else []
    if not sessions:
        raise AdminError(f"No session for {target}")
    for session in sessions:
        # policy-violation (RFC 6120 4.9.3.18): the server's operator decided the session
        # ends. 'conflict' would blame another resource, and 'reset' or 'system-shutdown'
        # would invite the client to reconnect at once; ejabberd's kick uses it too.
        session.close(StreamError("policy-violation", "Disconnected by the administrator"))
    return {"kicked": [str(session.jid) for session in sessions]}


async def stats(ctx: Components) -> dict[str, object]:
    """Live counts, and the counters since start; `clock` lets a caller turn two readings
    into rates."""
    streams = _streams(ctx)
    registry = ctx.metrics.registry

    def counter(name: str, **labels: str) -> int:
        return int(registry.get_sample_value(f"{name}_total", labels) or 0)

    return {
        "clock": time.monotonic(),
        "sessions": len(streams),
        "online_users": len({stream.jid.bare for stream in streams if stream.jid is not None}),
        "available_resources": sum(ctx.presence.is_available(stream) for stream in streams),
        "hibernating": sum(stream.hibernating.is_set() for stream in streams),
        "accounts": await ctx.accounts.count(),
        "stanzas_received": {k: counter("chorus_stanzas_received", kind=k) for k in KINDS},
        "stanzas_sent": {k: counter("chorus_stanzas_sent", kind=k) for k in KINDS},
        "presence_deliveries": counter("chorus_presence_deliveries"),
        "auth_failures": counter("chorus_auth_failures"),
    }


def _presence_of(ctx: Components, jid: JID) -> dict[str, object]:
    resources = sorted(ctx.presence.available(jid), key=lambda pair: pair[1].sequence, reverse=True)
    return {
        "jid": str(jid),
        "effective_state": ctx.presence.effective_state(jid),
        "resources": [
            {
                "resource": cast("ClientStream", session).jid.resource,
                "state": presence.state,
                "show": presence.stanza.findtext(SHOW),
                "status": presence.stanza.findtext(STATUS),
                "priority": presence.priority,
            }
            for session, presence in resources
        ],
    }


def _session(ctx: Components, stream: ClientStream) -> dict[str, object]:
    assert stream.jid is not None
    presence = dict(ctx.presence.available(stream.jid.bare)).get(stream)
    return {
        "jid": str(stream.jid),
        "peer": stream.peer,
        "tls": stream.tls_active,
        "state": presence.state if presence is not None else None,
        "resumable": stream.sm is not None and stream.sm.resumable,
        "hibernating": stream.hibernating.is_set(),
        "inactive": not stream.client_state.active,
    }


def _streams(ctx: Components) -> list[ClientStream]:
    # Bound sessions are always client streams; the registry only types what it needs.
    return [cast("ClientStream", session) for session in ctx.sessions.all()]


def _session_jid(ctx: Components, text: str) -> JID:
    """A bare JID (every session of the account) or a full one (that session)."""
    user, slash, resource = text.partition("/")
    bare = user_jid(ctx, user)
    if not slash:
        return bare
    try:
        return bare.with_resource(resource)
    except JIDError as error:
        raise AdminError(f"{text!r} is not a valid JID: {error}") from None


COMMANDS = {
    "presence.show": Command(show, offline_safe=False),
    "session.list": Command(session_list, offline_safe=False),
    "session.kick": Command(session_kick, offline_safe=False),
    "stats": Command(stats, offline_safe=False),
}
