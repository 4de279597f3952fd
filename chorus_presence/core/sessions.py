"""Who is online: the registry of bound client sessions, by bare JID and resource.

Live state only; it lives in memory and is empty after a restart by design. In a cluster it
also holds the sessions other nodes hold, as stand-ins that forward to their node (`remote`),
so that every lookup stays synchronous; they count as online but not as this node's own.

When an account is removed its sessions are retired before anyone else hears of it: from then
on their stanzas are refused, so nothing more is written for an account whose rows are gone.
They stay bound (presence still tells the contacts through them) until they close.
"""

from __future__ import annotations

from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import AccountRemoved, StanzaEvent
from chorus_presence.core.session import Session
from chorus_presence.xmpp.errors import StanzaError, StreamError
from chorus_presence.xmpp.jid import JID

# After presence has told the contacts, before the rest let go of the account.
CLOSE_PRIORITY = 50
# First of all on account/removed. It is synchronous, as is everything between the removal's
# commit and it, so no stanza of the account is handled in between.
RETIRE_PRIORITY = 1000
# Above every filter and handler of a session's stanzas but Metrics (1000), which counts them.
REFUSE_PRIORITY = 900


class SessionRegistry:
    """Bound sessions, found by full JID or by account."""

    def __init__(self) -> None:
        self._by_account: dict[JID, dict[str, Session]] = {}
        # Sessions of removed accounts, until they unbind. Sessions, not accounts: a new
        # account of the same name is not refused.
        self._retired: set[Session] = set()
        # Stand-ins for sessions another node of the cluster holds.
        self._remote: set[Session] = set()

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.ACCOUNT_REMOVED, self.retire, priority=RETIRE_PRIORITY)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed, priority=CLOSE_PRIORITY)
        for topic in (topics.MESSAGE_OUT, topics.PRESENCE_OUT, topics.IQ_OUT):
            bus.on(topic, self.refuse_retired, priority=REFUSE_PRIORITY)

    def retire(self, event: AccountRemoved) -> None:
        self._retired.update(self.of_account(event.user))

    def is_retired(self, session: Session) -> bool:
        """Whether the session's account was removed: a failure of its stanza is expected."""
        return session in self._retired

    def refuse_retired(self, event: StanzaEvent) -> object:
        """Nothing a removed account's session sends is handled any more."""
        if event.session not in self._retired:
            return None
        stanza_type = event.stanza.get("type")
        kind = event.stanza.tag.rpartition("}")[2] if isinstance(event.stanza.tag, str) else ""
        if (kind == "iq" and stanza_type in ("get", "set")) or (
            kind == "message" and stanza_type != "error"
        ):
            raise StanzaError("not-authorized", "The account was removed")
        # Presence, and IQ results and errors, are dropped: none may be answered with an error
        # worth having, and presence already told the contacts the account went.
        return STOP

    def account_removed(self, event: AccountRemoved) -> None:
        # not-authorized: the client's credentials no longer log it in, so it should not retry.
        for session in self.of_account(event.user):
            session.close(StreamError("not-authorized", "The account was removed"))

    def bind(self, session: Session, *, remote: bool = False) -> Session | None:
        """Register `session` under its JID; returns the session it replaces, if any.
        `remote`: a stand-in for a session another node of the cluster holds."""
        jid = session.jid
        assert jid.resource is not None
        resources = self._by_account.setdefault(jid.bare, {})
        replaced = resources.get(jid.resource)
        resources[jid.resource] = session
        if replaced is not None:
            self._remote.discard(replaced)
        if remote:
            self._remote.add(session)
        return replaced

    def unbind(self, session: Session) -> bool:
        """Forget `session`; False when it was not (or no longer) the bound one for its JID."""
        self._retired.discard(session)
        jid = session.jid
        resources = self._by_account.get(jid.bare)
        if not resources or jid.resource is None or resources.get(jid.resource) is not session:
            return False
        del resources[jid.resource]
        self._remote.discard(session)
        if not resources:
            del self._by_account[jid.bare]
        return True

    def is_remote(self, session: Session) -> bool:
        return session in self._remote

    def local(self) -> list[Session]:
        """The sessions of this node's own streams."""
        return [session for session in self.all() if session not in self._remote]

    def get(self, jid: JID) -> Session | None:
        if jid.resource is None:
            return None
        resources = self._by_account.get(jid.bare)
        return resources.get(jid.resource) if resources else None

    def of_account(self, bare: JID) -> list[Session]:
        resources = self._by_account.get(bare)
        return list(resources.values()) if resources else []

    def is_online(self, bare: JID) -> bool:
        return bare in self._by_account

    def all(self) -> list[Session]:
        return [s for resources in self._by_account.values() for s in resources.values()]

    def __len__(self) -> int:
        """How many sessions this node holds itself."""
        return sum(len(resources) for resources in self._by_account.values()) - len(self._remote)
