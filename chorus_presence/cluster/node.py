"""This node as a member of the cluster: what it tells the others, what it makes of what they
tell it, its heartbeat, and who is alive.

- **Tells.** A session bound, its presence changed or it ended (`session/bound`,
  `resource/presence`, `session/ended`) is written to this node's directory in Redis and
  announced to every other node; so is each commit that other nodes may hold a copy of
  (`roster/committed`, `block-list/committed`: the usernames, whose copies they reload).
- **Hears.** Stanzas for the sessions it holds, which it writes to their streams; other
  nodes' announcements, applied to the stand-ins (`mirror`); questions for the admin commands.
- **Heartbeat.** Every `cluster.heartbeat` seconds its heartbeat key is set to expire after
  `cluster.node_timeout`; a node whose key expired (or whose boot id changed: it restarted) is
  declared dead, and its users' contacts here are told they went offline, by each node for its
  own. A node that finds its own key gone (it was silent too long, or Redis lost its data)
  joins again, as it does when Redis comes back: its directory written anew, and a `hello`
  with every session it holds, which the others answer with theirs. What the others committed
  meanwhile was announced to nobody here, so the copies of rosters, block lists and settings
  kept here are reloaded from the database, and what changed pushed.
- **Start and stop.** It starts before the listeners: it waits for the heartbeat of an earlier
  run of the same node to expire (so that the others declare that run dead; a name that stays
  taken is another node's, a configuration error), drops that run's directory and has every
  live node tell it what it holds. It stops after every stream ended, saying goodbye.

While Redis cannot be reached, messages and IQs for sessions only other nodes hold are refused
with `service-unavailable` (of type wait) instead of vanishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from chorus_presence.cluster import wire
from chorus_presence.cluster.keys import Keys
from chorus_presence.cluster.link import FAILURES, RedisLink, cancelled_meanwhile
from chorus_presence.cluster.mirror import Mirror
from chorus_presence.cluster.remote import Outbox
from chorus_presence.cluster.requests import MissedRequests
from chorus_presence.config import ClusterConfig, ConfigError, display_url
from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import (
    AccountRemoved,
    BlockListCommitted,
    LastSeenChanged,
    PresenceChanged,
    QuietHoursChanged,
    RosterCommitted,
    SessionEvent,
    SignInsRevoked,
    StanzaEvent,
)
from chorus_presence.core.session import Session
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.block_list import BlockListService
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.subscriptions import SubscriptionService
from chorus_presence.services.visibility import VisibilityService
from chorus_presence.xmpp.errors import StanzaError, StreamError
from chorus_presence.xmpp.jid import JID, JIDError

log = logging.getLogger(__name__)

# Below the block filter (500), which answers a blocked sender whatever the cluster's state.
REFUSE_PRIORITY = 400
# Before the registry retires and closes the account's sessions (1000, 50): the other nodes
# hear of the removal before the presence and the stream ends that follow from it.
REMOVED_PRIORITY = 1100

# Drops a dead node's directory and name, unless it started again meanwhile.
_CLEAN_UP = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[1])
  return 1
end
return 0
"""

Query = Callable[[], Awaitable[object]]
# Stanzas written for a session of a user's that ended: messages stored or bounced.
Undelivered = Callable[[JID, list[bytes]], Awaitable[None]]


class ClusterUnavailable(Exception):
    """Redis cannot be reached, so the other nodes cannot be asked."""


class ClusterNode:
    def __init__(
        self,
        config: ClusterConfig,
        bus: Bus,
        sessions: SessionRegistry,
        presence: PresenceService,
        rosters: RosterService,
        block_list: BlockListService,
        visibility: VisibilityService,
        subscriptions: SubscriptionService,
        *,
        domain: str,
        undelivered: Undelivered,
    ) -> None:
        self.name = config.node
        # This run of the node: the others tell a restart from a node that kept running.
        self.boot = secrets.token_hex(8)
        self._config = config
        self._bus = bus
        self._sessions = sessions
        self._presence = presence
        self._rosters = rosters
        self._block_list = block_list
        self._visibility = visibility
        self._domain = domain
        self._undelivered = undelivered
        self.link = RedisLink(
            config.redis,
            timeout=config.node_timeout,
            retry_every=config.heartbeat,
            on_lost=self._lost,
            on_restored=self._restored,
        )
        self.keys = Keys.for_database(self.link.database)
        self.outbox = Outbox(self._publish)
        self.mirror = Mirror(sessions, presence, rosters, self.outbox)
        self._requests = MissedRequests(
            sessions, presence, rosters, block_list, subscriptions, domain=domain
        )
        # The other live nodes, with their boot ids.
        self.peers: dict[str, str] = {}
        # What this node's directory holds: its own sessions.
        self._entries: dict[Session, wire.Entry] = {}
        self._queries: dict[str, Query] = {}
        self._asked: dict[str, asyncio.Future[object]] = {}
        self._synced: dict[str, asyncio.Event] = {}
        # The writer and the listener, then the heartbeat.
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._rejoining: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()
        # Accounts another node removed, whose removal this node is answering for itself.
        self._replaying: set[JID] = set()
        self._started = False
        # What a peer of another version sent that was logged already.
        self._warned: set[str] = set()
        # Since when Redis has answered without a break: nobody is declared dead before every
        # node had a full timeout to beat again.
        self._up_since = 0.0

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.SESSION_BOUND, self._bound)
        bus.on(topics.RESOURCE_PRESENCE, self._presence_changed)
        bus.on(topics.SESSION_ENDED, self._ended)
        bus.on(topics.ROSTER_COMMITTED, self._roster_committed)
        bus.on(topics.BLOCK_LIST_COMMITTED, self._block_list_committed)
        bus.on(topics.ACCOUNT_REMOVED, self._account_removed, priority=REMOVED_PRIORITY)
        bus.on(topics.SIGN_INS_REVOKED, self._sign_ins_revoked)
        bus.on(topics.QUIET_HOURS_CHANGED, self._quiet_hours_changed)
        bus.on(topics.LAST_SEEN_CHANGED, self._last_seen_changed)
        for topic in (topics.MESSAGE_IN_BARE, topics.MESSAGE_IN_FULL, topics.IQ_IN_FULL):
            bus.on(topic, self._refuse_unreachable, priority=REFUSE_PRIORITY)

    # Start and stop

    async def start(self, queries: dict[str, Query]) -> None:
        """Join the cluster; a ConfigError naming the key when Redis cannot be reached or the
        node's name is taken."""
        self._queries = dict(queries)
        loop = asyncio.get_running_loop()
        await self.link.connect()
        try:
            # Until the name is this node's, nothing in Redis is: a failure here touches none.
            await self._wait_for_name()
            self._started = True
            self._tasks.append(loop.create_task(self.link.run_writer()))
            channel = self.keys.channel(self.name)
            self._tasks.append(loop.create_task(self.link.listen(channel, self._received)))
            try:
                await asyncio.wait_for(self.link.listening.wait(), self._config.node_timeout)
            except TimeoutError:
                raise ConfigError(
                    "Cannot subscribe to this node's channel on Redis at"
                    f" {display_url(self.link.url)}"
                    " (cluster.redis)"
                ) from None
            # What an earlier run of this node left is stale: its sessions died with it, and
            # the others have told their contacts.
            await self.link.client.delete(self.keys.directory(self.name))
            await self._register()
            self._up_since = loop.time()
            self._heartbeat = loop.create_task(self._beat_forever())
            await self._greet(await self._live_others())
        except FAILURES as exc:
            cancelled_meanwhile()
            await self.stop()
            raise ConfigError(
                f"Cannot join the cluster on Redis at {display_url(self.link.url)}"
                f" (cluster.redis): {exc}"
            ) from None
        except BaseException:
            await self.stop()
            raise
        log.info("joined the cluster as node %s with %d other nodes", self.name, len(self.peers))

    async def stop(self) -> None:
        """Leave the cluster: after every stream ended, so the others heard each end."""
        if not self._started:
            await self.link.close()
            return
        self._started = False
        # Nothing may beat or join again once the node said goodbye.
        await self._end([task for task in (self._heartbeat, self._rejoining) if task])
        if self.link.up:
            for node in self.peers:
                self.outbox.put(node, [wire.BYE])
            self.outbox.flush()
            self.link.write(self._leave)
            await self.link.drain(self._config.node_timeout)
        self.link.closing = True
        await self._end([*self._tasks, *self._answering])
        self._tasks.clear()
        self._heartbeat = self._rejoining = None
        await self.link.close()

    async def _end(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancel `tasks` and wait for them, up to node_timeout: the Redis client may swallow
        a cancellation in the middle of a command, so each loop also checks that the node is
        stopping, at its next turn."""
        for task in tasks:
            task.cancel()
        if tasks:
            _done, stuck = await asyncio.wait(tasks, timeout=self._config.node_timeout)
            if stuck:
                log.warning("%d cluster tasks did not stop in time", len(stuck))

    def _leave(self, pipe: Any) -> None:
        pipe.delete(self.keys.directory(self.name), self.keys.alive(self.name))
        pipe.srem(self.keys.nodes, self.name)

    async def _wait_for_name(self) -> None:
        """An earlier run of this node that was killed still has a heartbeat for up to
        node_timeout: wait for it to expire, so that the others declare that run dead."""
        client, key = self.link.client, self.keys.alive(self.name)
        deadline = asyncio.get_running_loop().time() + self._config.node_timeout
        deadline += self._config.heartbeat
        waited = False
        while await client.exists(key):
            if asyncio.get_running_loop().time() >= deadline:
                raise ConfigError(
                    f"Another node named {self.name} is running on the cluster's Redis"
                    " (cluster.node): give each node a name of its own"
                )
            if not waited:
                log.info("waiting for the heartbeat of an earlier run of %s to expire", self.name)
                waited = True
            await asyncio.sleep(self._config.heartbeat)

    async def _register(self) -> None:
        """The heartbeat, the name among the nodes, and this node's directory."""
        pipe = self.link.client.pipeline(transaction=False)
        pipe.set(self.keys.alive(self.name), self.boot, px=self._timeout_ms)
        pipe.sadd(self.keys.nodes, self.name)
        directory = self.keys.directory(self.name)
        pipe.delete(directory)
        for entry in self._entries.values():
            pipe.hset(directory, entry.jid, wire.encode_entry(entry))
        await pipe.execute()

    async def _greet(self, others: dict[str, str]) -> None:
        """Say hello, with every session this node holds, to each live node, and wait (up to
        node_timeout) for each to answer with what it holds."""
        snapshot = [entry.to_wire() for entry in self._entries.values()]
        waits = []
        for node, boot in others.items():
            if self.peers.get(node) != boot:
                await self._incarnation(node, boot)
            event = self._synced[node] = asyncio.Event()
            waits.append(event.wait())
            self.outbox.put(node, [wire.HELLO, snapshot])
        if not waits:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self._config.node_timeout)
        except TimeoutError:
            silent = sorted(node for node in others if not self._synced[node].is_set())
            log.warning(
                "no answer to hello from %s; their sessions show up as they change",
                ", ".join(silent),
            )

    # Heartbeat and liveness

    @property
    def _timeout_ms(self) -> int:
        return max(1, int(self._config.node_timeout * 1000))

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat)
            if not self._started:
                return
            try:
                await self._beat()
            except FAILURES as exc:
                cancelled_meanwhile()
                self.link.failed(exc)
            except Exception:
                log.exception("heartbeat of %s failed", self.name)

    async def _beat(self) -> None:
        pipe = self.link.client.pipeline(transaction=False)
        pipe.set(self.keys.alive(self.name), self.boot, px=self._timeout_ms, get=True)
        pipe.sadd(self.keys.nodes, self.name)
        previous, _ = await pipe.execute()
        others = await self._live_others(clean=True)
        self.link.succeeded()
        previous = _text(previous) if previous is not None else None
        if previous != self.boot and self._rejoining is None:
            if previous is None:
                log.warning(
                    "the heartbeat of %s had expired (a pause longer than node_timeout, or"
                    " Redis lost its data): joining the cluster again",
                    self.name,
                )
                self._rejoin()
            else:
                log.error(
                    "another node calls itself %s (cluster.node): each node needs a name of"
                    " its own",
                    self.name,
                )
        if asyncio.get_running_loop().time() - self._up_since < self._config.node_timeout:
            return
        for node, boot in list(self.peers.items()):
            if others.get(node) == boot:
                continue
            if node in others:
                log.warning("node %s restarted: its earlier sessions are gone", node)
            else:
                log.warning(
                    "node %s missed its heartbeat for %gs: declared dead",
                    node,
                    self._config.node_timeout,
                )
            await self._declare_dead(node)
        unknown = {node: boot for node, boot in others.items() if node not in self.peers}
        if unknown:
            await self._greet(unknown)

    async def _live_others(self, *, clean: bool = False) -> dict[str, str]:
        """The other nodes with a heartbeat, and their boot ids; with `clean`, the names and
        directories of nodes that have none are dropped (they died with nobody to notice)."""
        client = self.link.client
        members = sorted(_text(name) for name in await client.smembers(self.keys.nodes))
        members = [name for name in members if name != self.name]
        if not members:
            return {}
        boots = await client.mget([self.keys.alive(name) for name in members])
        alive = {name: _text(boot) for name, boot in zip(members, boots, strict=True) if boot}
        if clean:
            for name in members:
                if name not in alive and name not in self.peers:
                    await self._clean_up(name)
        return alive

    async def _declare_dead(self, node: str) -> None:
        self.peers.pop(node, None)
        self._synced.pop(node, None)
        told = await self.mirror.node_gone(node, tell=True)
        if told:
            log.warning("%d sessions of node %s ended with it", told, node)
        await self._clean_up(node)

    async def _clean_up(self, node: str) -> None:
        keys = [self.keys.alive(node), self.keys.directory(node), self.keys.nodes]
        await self.link.client.eval(_CLEAN_UP, len(keys), *keys, node)

    def _rejoin(self) -> None:
        loop = asyncio.get_running_loop()
        # The others need a full timeout to beat again (after Redis came back empty) before
        # any is declared dead.
        self._up_since = loop.time()
        self._rejoining = loop.create_task(self._rejoin_now())

    async def _rejoin_now(self) -> None:
        try:
            await self.link.listening.wait()
            if not self._started:
                return
            await self._register()
            self._up_since = asyncio.get_running_loop().time()
            await self._greet(await self._live_others())
            await self._resync()
        except FAILURES as exc:
            cancelled_meanwhile()
            self.link.failed(exc)
        except Exception:
            log.exception("%s could not join the cluster again", self.name)
        finally:
            self._rejoining = None

    async def _resync(self) -> None:
        """What the other nodes committed while their word could not arrive: the copies of
        durable state kept here are reloaded, and what changed pushed to this node's
        resources."""
        owners = {session.jid.local for session in self._sessions.all()}
        for owner in sorted(owner for owner in owners if owner is not None):
            await self._requests.refresh(owner, [])
        await self._block_list.resync()
        await self._visibility.resync()

    def _lost(self) -> None:
        for future in self._asked.values():
            if not future.done():
                future.set_exception(ClusterUnavailable("Redis cannot be reached"))

    def _restored(self) -> None:
        if self._started and self._rejoining is None:
            self._rejoin()

    # What this node tells the others

    def _announce(self, item: wire.Item) -> None:
        for node in self.peers:
            self.outbox.put(node, item)

    def _publish(self, node: str, items: list[wire.Item]) -> None:
        data = wire.encode(self.name, self.boot, items)
        channel = self.keys.channel(node)
        self.link.write(lambda pipe: pipe.publish(channel, data))

    def _write_entry(self, entry: wire.Entry) -> None:
        directory, text = self.keys.directory(self.name), wire.encode_entry(entry)
        self.link.write(lambda pipe: pipe.hset(directory, entry.jid, text))

    async def _bound(self, event: SessionEvent) -> None:
        """Written and announced before the client hears it is bound: a stanza someone sends
        it on hearing of it from the client finds the session known on every node."""
        session = event.session
        if self._sessions.is_remote(session):
            return
        entry = wire.Entry(str(session.jid), secrets.token_hex(8))
        self._entries[session] = entry
        self._write_entry(entry)
        self._announce([wire.BOUND, entry.to_wire()])
        self.outbox.flush()
        # Redis answers or fails within node_timeout; a bind never waits longer in any case.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.link.written(), self._config.node_timeout)

    def _presence_changed(self, event: PresenceChanged) -> None:
        known = self._entries.get(event.session)
        if known is None:
            return
        stanza = wire.stanza_text(event.stanza) if event.stanza is not None else None
        entry = wire.Entry(known.jid, known.sid, stanza, event.priority, event.state)
        self._entries[event.session] = entry
        self._write_entry(entry)
        self._announce([wire.PRESENCE, entry.to_wire()])

    def _ended(self, event: SessionEvent) -> None:
        session = event.session
        entry = self._entries.pop(session, None)
        if entry is None:
            return
        current = self._sessions.get(session.jid)
        if current is None or self._sessions.is_remote(current):
            # Unless a newer session of this node took the same full JID, and its entry.
            directory = self.keys.directory(self.name)
            self.link.write(lambda pipe: pipe.hdel(directory, entry.jid))
        self._announce([wire.UNBOUND, entry.jid, entry.sid])

    def _roster_committed(self, event: RosterCommitted) -> None:
        changes = event.changes
        owners = {owner for owner, _ in (*changes.upserts, *changes.deletes)}
        owners |= {owner for owner, _ in (*changes.pending_add, *changes.pending_remove)}
        settings = {owner for owner, _ in changes.settings}
        if owners or settings:
            changed = {
                "rosters": sorted(owners),
                "settings": sorted(settings),
                "requests": self._requests.reached(changes),
            }
            self._announce([wire.CHANGED, changed])

    def _block_list_committed(self, event: BlockListCommitted) -> None:
        assert event.owner.local is not None
        self._announce([wire.CHANGED, {"blocks": [event.owner.local]}])

    def _account_removed(self, event: AccountRemoved) -> None:
        """Every other node answers for its own memory and sessions, as this one does."""
        if event.user not in self._replaying:
            self._announce([wire.REMOVED, wire.removed_to_wire(event.rows)])

    def _sign_ins_revoked(self, event: SignInsRevoked) -> None:
        """Every node ends its own streams logged in under them."""
        if not event.elsewhere:
            self._announce([wire.REVOKED, event.username, [list(pair) for pair in event.labels]])

    def _quiet_hours_changed(self, event: QuietHoursChanged) -> None:
        """Every node plans the user's boundaries again, for its own resources."""
        if not event.elsewhere:
            self._announce([wire.CHANGED, {"quiet-hours": [event.owner]}])

    def _last_seen_changed(self, event: LastSeenChanged) -> None:
        """Every node hides or shows the user's last seen: each answers last activity, makes
        "Not logged in" and delivers presence to its own users."""
        if not event.elsewhere:
            self._announce([wire.CHANGED, {"last-seen": [event.owner]}])

    def _refuse_unreachable(self, event: StanzaEvent) -> object:
        """Without Redis, what would go to another node would be lost: refused instead."""
        if self.link.up or event.target is None or event.target.local is None:
            return None
        target = event.target
        if self._presence.appears_offline(target.bare) and event.sender.bare != target.bare:
            # Refused so, it would tell that the user is connected; what a user who is not
            # logged in gets is answered further on.
            return None
        if target.resource is not None:
            found = self._sessions.get(target)
            recipients = [found] if found is not None else []
        else:
            recipients = [session for session, _ in self._presence.available(target)]
        if not recipients or not all(self._sessions.is_remote(s) for s in recipients):
            return None
        if event.stanza.get("type") in ("result", "error"):
            return STOP
        raise StanzaError(
            "service-unavailable",
            f"{target} is connected to another node of the cluster, which cannot be reached now",
            error_type="wait",
        )

    # Questions between nodes

    async def ask_all(self, query: str) -> dict[str, object]:
        """Every other live node's answer to `query`, by node; one that does not answer
        within node_timeout is left out, with a warning. ClusterUnavailable without Redis."""
        if not self.link.up:
            raise ClusterUnavailable()
        loop = asyncio.get_running_loop()
        asked: dict[str, tuple[str, asyncio.Future[object]]] = {}
        for node in sorted(self.peers):
            question = secrets.token_hex(8)
            future: asyncio.Future[object] = loop.create_future()
            self._asked[question] = future
            asked[node] = (question, future)
            self.outbox.put(node, [wire.ASK, question, query])
        try:
            if asked:
                await asyncio.wait(
                    [future for _, future in asked.values()], timeout=self._config.node_timeout
                )
        finally:
            for question, _future in asked.values():
                self._asked.pop(question, None)
        answers: dict[str, object] = {}
        for node, (_question, future) in asked.items():
            if not future.done():
                future.cancel()
                log.warning("node %s did not answer %s", node, query)
            elif future.exception() is None:
                answers[node] = future.result()
            else:
                log.warning("node %s could not answer %s: %s", node, query, future.exception())
        return answers

    async def _answer(self, node: str, question: str, query: str) -> None:
        handler = self._queries.get(query)
        result: object = None
        error: str | None = None
        if handler is None:
            error = f"Unknown query {query!r}"
        else:
            try:
                result = await handler()
            except Exception as exc:
                log.exception("query %s from node %s failed", query, node)
                error = str(exc) or type(exc).__name__
        self.outbox.put(node, [wire.ANSWER, question, result, error])

    # What this node hears

    async def _received(self, data: bytes) -> None:
        try:
            envelope = wire.decode(data)
        except wire.WireError as exc:
            self._warn_once(str(exc), "dropped a message on the cluster channel: %s", exc)
            return
        if envelope.node == self.name:
            return
        try:
            await self._incarnation(envelope.node, envelope.boot)
        except Exception:
            log.exception("message from node %s not applied", envelope.node)
            return
        for item in envelope.items:
            try:
                await self._apply(envelope, item)
            except wire.UnknownKind as exc:
                self._warn_once(
                    f"kind {exc}", "skipped %s from node %s: a newer node's", exc, envelope.node
                )
            except (wire.WireError, JIDError, ValueError, TypeError) as exc:
                log.warning("dropped %s from node %s: %s", item[0], envelope.node, exc)
            except Exception:
                log.exception("%s from node %s failed", item[0], envelope.node)

    async def _incarnation(self, node: str, boot: str) -> None:
        """A message from a run of `node` not known here: an earlier run's sessions are gone."""
        known = self.peers.get(node)
        if known == boot:
            return
        if known is not None:
            log.warning("node %s restarted: its earlier sessions are gone", node)
            await self._declare_dead(node)
        self.peers[node] = boot

    async def _apply(self, envelope: wire.Envelope, item: wire.Item) -> None:
        kind, node = item[0], envelope.node
        if kind == wire.SEND:
            jid, data = wire.fields(item, 2)
            session = self._local(jid)
            if session is not None:
                session.send_bytes(data.encode())
            else:
                # The session ended while this was on its way: as on one node.
                await self._undelivered(JID.parse(jid).bare, [data.encode()])
        elif kind == wire.PRESENCE_TO:
            jid, data, sender = wire.fields(item, 3)
            session = self._local(jid)
            if session is not None:
                session.send_presence(data.encode(), sender)
        elif kind == wire.CLOSE:
            jid, condition, text = wire.fields(item, 3)
            session = self._local(jid)
            if session is not None:
                session.close(StreamError(condition, text) if condition else None)
        elif kind == wire.BOUND:
            (entry,) = wire.fields(item, 1)
            self.mirror.bound(node, envelope.boot, wire.Entry.from_wire(entry))
        elif kind == wire.PRESENCE:
            (entry,) = wire.fields(item, 1)
            self.mirror.presence(node, wire.Entry.from_wire(entry))
        elif kind == wire.UNBOUND:
            jid, sid = wire.fields(item, 2)
            await self.mirror.unbound(node, jid, sid)
        elif kind == wire.CHANGED:
            (changed,) = wire.fields(item, 1)
            await self._refresh(changed)
        elif kind == wire.REMOVED:
            (removed,) = wire.fields(item, 1)
            rows = wire.removed_from_wire(removed)
            user = JID(rows.username, self._domain)
            self._replaying.add(user)
            try:
                await self._bus.notify(topics.ACCOUNT_REMOVED, AccountRemoved(user, rows))
            finally:
                self._replaying.discard(user)
        elif kind == wire.REVOKED:
            username, labels = wire.fields(item, 2)
            revoked = SignInsRevoked(
                str(username), tuple((str(id_), str(label)) for id_, label in labels), True
            )
            await self._bus.notify(topics.SIGN_INS_REVOKED, revoked)
        elif kind in (wire.HELLO, wire.SYNC):
            (held,) = wire.fields(item, 1)
            entries = [wire.Entry.from_wire(entry) for entry in held]
            await self.mirror.reconcile(node, envelope.boot, entries)
            if kind == wire.HELLO:
                snapshot = [entry.to_wire() for entry in self._entries.values()]
                self.outbox.put(node, [wire.SYNC, snapshot])
            synced = self._synced.get(node)
            if synced is not None:
                synced.set()
        elif kind == wire.BYE:
            self.peers.pop(node, None)
            self._synced.pop(node, None)
            await self.mirror.node_gone(node, tell=False)
        elif kind == wire.ASK:
            question, query = wire.fields(item, 2)
            task = asyncio.get_running_loop().create_task(self._answer(node, question, query))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
        elif kind == wire.ANSWER:
            question, result, error = wire.fields(item, 3)
            future = self._asked.get(question)
            if future is not None and not future.done():
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(RuntimeError(error))
        else:
            raise wire.UnknownKind(kind)

    async def _refresh(self, changed: dict[str, list[Any]]) -> None:
        requests = changed.get("requests", [])
        for owner in changed.get("rosters", []):
            await self._requests.refresh(str(owner), requests)
        for owner in changed.get("blocks", []):
            await self._block_list.refresh(JID(str(owner), self._domain))
        for owner in changed.get("settings", []):
            await self._visibility.refresh(str(owner))
        for owner in changed.get("quiet-hours", []):
            await self._bus.notify(
                topics.QUIET_HOURS_CHANGED, QuietHoursChanged(str(owner), elsewhere=True)
            )
        for owner in changed.get("last-seen", []):
            await self._bus.notify(
                topics.LAST_SEEN_CHANGED, LastSeenChanged(str(owner), elsewhere=True)
            )

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        """Logged once per node run: a node of another version repeats it with every message."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _local(self, jid: str) -> Session | None:
        """The session this node holds for a full JID, if it still does."""
        session = self._sessions.get(JID.parse(jid))
        if session is None or self._sessions.is_remote(session):
            return None
        return session


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
