"""Who is online: the registry of bound client sessions, by bare JID and resource.

Live state only; it lives in memory and is empty after a restart by design.
"""

from __future__ import annotations

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import AccountRemoved
from chorus_presence.core.session import Session
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID

# After presence has told the contacts, before the rest let go of the account.
CLOSE_PRIORITY = 50


class SessionRegistry:
    """Bound sessions, found by full JID or by account."""

    def __init__(self) -> None:
        self._by_account: dict[JID, dict[str, Session]] = {}

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed, priority=CLOSE_PRIORITY)

    def account_removed(self, event: AccountRemoved) -> None:
        # not-authorized: the client's credentials no longer log it in, so it should not retry.
        for session in self.of_account(event.user):
            session.close(StreamError("not-authorized", "The account was removed"))

    def bind(self, session: Session) -> Session | None:
        """Register `session` under its JID; returns the session it replaces, if any."""
        jid = session.jid
        assert jid.resource is not None
        resources = self._by_account.setdefault(jid.bare, {})
        replaced = resources.get(jid.resource)
        resources[jid.resource] = session
        return replaced

    def unbind(self, session: Session) -> bool:
        """Forget `session`; False when it was not (or no longer) the bound one for its JID."""
        jid = session.jid
        resources = self._by_account.get(jid.bare)
        if not resources or jid.resource is None or resources.get(jid.resource) is not session:
            return False
        del resources[jid.resource]
        if not resources:
            del self._by_account[jid.bare]
        return True

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
        return sum(len(resources) for resources in self._by_account.values())
