"""Who is online: the registry of bound client sessions, by bare JID and resource.

Live state only; it lives in memory and is empty after a restart by design.
"""

from __future__ import annotations

from typing import Protocol

from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element


class BoundSession(Protocol):
    jid: JID | None

    def send(self, stanza: Element) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...

    def send_presence(self, data: bytes, sender: str) -> None: ...

    def close(self, error: object = None) -> None: ...


class SessionRegistry:
    """Bound sessions, found by full JID or by account."""

    def __init__(self) -> None:
        self._by_account: dict[JID, dict[str, BoundSession]] = {}

    def bind(self, session: BoundSession, jid: JID) -> BoundSession | None:
        """Register `session` as `jid`; returns the session it replaces, if any."""
        resources = self._by_account.setdefault(jid.bare, {})
        assert jid.resource is not None
        replaced = resources.get(jid.resource)
        resources[jid.resource] = session
        return replaced

    def unbind(self, session: BoundSession) -> bool:
        """Forget `session`; False when it was not (or no longer) the bound one for its JID."""
        jid = session.jid
        if jid is None or jid.resource is None:
            return False
        resources = self._by_account.get(jid.bare)
        if not resources or resources.get(jid.resource) is not session:
            return False
        del resources[jid.resource]
        if not resources:
            del self._by_account[jid.bare]
        return True

    def get(self, jid: JID) -> BoundSession | None:
        if jid.resource is None:
            return None
        resources = self._by_account.get(jid.bare)
        return resources.get(jid.resource) if resources else None

    def of_account(self, bare: JID) -> list[BoundSession]:
        resources = self._by_account.get(bare)
        return list(resources.values()) if resources else []

    def is_online(self, bare: JID) -> bool:
        return bare in self._by_account

    def all(self) -> list[BoundSession]:
        return [s for resources in self._by_account.values() for s in resources.values()]

    def __len__(self) -> int:
        return sum(len(resources) for resources in self._by_account.values())
