"""Admin commands on live state: who is online and how (presence show), the sessions (list,
kick) and the server's counters (stats). All need the running server.

In a cluster they answer for every node: the registry holds the other nodes' sessions too (a
kick goes to the node holding the session), and the list and the counters are asked of each
other node (`cluster_queries` are what this node answers when asked).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from chorus_presence.admin.common import AdminError, Command, existing_user, user_jid
from chorus_presence.core.metrics import KINDS
from chorus_presence.server.components import Components
from chorus_presence.services.rich_states import SHOW, STATUS
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID, JIDError

if TYPE_CHECKING:
    from chorus_presence.server.c2s import ClientStream

# The counts of `stats` that add up across the nodes of a cluster.
SUMMED = ("sessions", "available_resources", "hibernating", "presence_deliveries", "auth_failures")


async def show(ctx: Components, user: str | None = None) -> object:
    """One user's resources and effective state; without a user, every user online."""
    if user is not None:
        return _presence_of(ctx, await existing_user(ctx, user))
    online = sorted({s.jid.bare for s in ctx.sessions.all() if s.jid is not None}, key=str)
    return [_presence_of(ctx, jid) for jid in online]


async def session_list(ctx: Components) -> list[dict[str, object]]:
    rows = await _local_sessions(ctx)
    for answer in (await _ask_others(ctx, "session.list")).values():
        rows.extend(cast("list[dict[str, object]]", answer))
    return sorted(rows, key=lambda row: str(row["jid"]))


async def _local_sessions(ctx: Components) -> list[dict[str, object]]:
    streams = sorted(_streams(ctx), key=lambda stream: str(stream.jid))
    rows = [_session(ctx, stream) for stream in streams]
    if ctx.cluster is not None:
        for row in rows:
            row["node"] = ctx.cluster.name
    return rows


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
    into rates. In a cluster, the sums over every node that answered, and each node's own
    under `nodes`."""
    own = await _local_stats(ctx)
    if ctx.cluster is None:
        return own
    nodes = {ctx.cluster.name: own, **await _ask_others(ctx, "stats")}
    readings = [cast("dict[str, Any]", reading) for reading in nodes.values()]
    total: dict[str, Any] = {"clock": own["clock"], "accounts": own["accounts"]}
    for key in SUMMED:
        total[key] = sum(int(reading[key]) for reading in readings)
    for key in ("stanzas_received", "stanzas_sent"):
        total[key] = {kind: sum(int(reading[key][kind]) for reading in readings) for kind in KINDS}
    # A user with sessions on two nodes is one user online.
    total["online_users"] = len({session.jid.bare for session in ctx.sessions.all()})
    total["nodes"] = nodes
    return total


async def _local_stats(ctx: Components) -> dict[str, object]:
    streams = _streams(ctx)
    registry = ctx.metrics.registry

    def counter(name: str, **labels: str) -> int:
        return int(registry.get_sample_value(f"{name}_total", labels) or 0)

    return {
        "clock": time.monotonic(),
        "sessions": len(streams),
        "online_users": len({stream.jid.bare for stream in streams if stream.jid is not None}),
        "available_resources": sum(ctx.presence.is_available(stream) for stream in streams),
        "hibernating": sum(stream.is_hibernating for stream in streams),
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
        "hibernating": stream.is_hibernating,
        "inactive": not stream.client_state.active,
    }


def _streams(ctx: Components) -> list[ClientStream]:
    # This node's bound sessions are client streams; the registry only types what it needs.
    return [cast("ClientStream", session) for session in ctx.sessions.local()]


async def _ask_others(ctx: Components, query: str) -> dict[str, object]:
    """The other nodes' answers to `query`, by node; none on a single node."""
    if ctx.cluster is None:
        return {}
    # Loaded already, with the cluster; a single server never imports it.
    from chorus_presence.cluster.node import ClusterUnavailable

    try:
        return await ctx.cluster.ask_all(query)
    except ClusterUnavailable:
        raise AdminError(
            "Redis cannot be reached, so the other nodes of the cluster cannot be asked"
        ) from None


def cluster_queries(ctx: Components) -> dict[str, Callable[[], Awaitable[object]]]:
    """What this node answers when another node runs `session list` or `stats`."""
    return {"session.list": lambda: _local_sessions(ctx), "stats": lambda: _local_stats(ctx)}


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
