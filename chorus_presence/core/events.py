"""The events the bus carries: stanzas on their way, presence audiences, lifecycles.

Each is a small mutable record: a filter may narrow an audience in place, a handler may read
what earlier ones left. Stanza events carry the session they came from and the parsed `to`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from chorus_presence.core.session import Session, Stream
from chorus_presence.storage.accounts import RemovedAccount
from chorus_presence.storage.rosters import RosterChanges
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, iq_result

# An IQ handler's answer when it already sent its reply itself.
ANSWERED = True


@dataclass(slots=True)
class StanzaEvent:
    """A stanza from a bound session: `from` already stamped, `to` parsed (None when absent)."""

    session: Session
    stanza: Element
    target: JID | None

    @property
    def sender(self) -> JID:
        return self.session.jid


@dataclass(slots=True)
class IqRequest:
    """An IQ get or set that the server answers, for itself or for an account.

    `sender` is None only before authentication; `target` is the parsed `to`.
    """

    session: Stream
    stanza: Element
    payload: Element
    sender: JID | None
    target: JID | None

    def reply(self, payload: Element | None = None) -> Element:
        return iq_result(self.stanza, payload)

    @property
    def bound_session(self) -> Session:
        """The session that asked; only authenticated, bound streams send these."""
        assert self.sender is not None
        return cast(Session, self.session)

    @property
    def user(self) -> JID:
        """The bare JID of the authenticated user who asked."""
        assert self.sender is not None
        return self.sender.bare

    @property
    def username(self) -> str:
        local = self.user.local
        assert local is not None
        return local

    def own_account(self, what: str, done: str = "read or changed") -> str:
        """The asker's username, for an IQ about their own `what`: one addressed to another
        account's bare JID is `forbidden`."""
        if self.target is not None and self.target != self.user:
            raise StanzaError("forbidden", f"Only your own {what} can be {done}")
        return self.username


@dataclass(slots=True)
class Audience:
    """The bare JIDs on the other side of `user`'s presence: those who receive it
    (`presence/audience`) or those whose presence `user` is shown (`presence/view`)."""

    user: JID
    others: set[JID]


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """`requester` asks to see `owner`'s presence. A handler answers 'approve', 'refuse'
    (answered with unsubscribed) or 'drop', or None to leave it to RFC 6121; what it changes
    durably it adds to `changes`, which commit with the exchange."""

    owner: JID
    requester: JID
    changes: RosterChanges


@dataclass(frozen=True, slots=True)
class OfflineView:
    user: JID


@dataclass(frozen=True, slots=True)
class GeneratedPresence:
    """A presence the server made for `user`, before anyone receives it."""

    user: JID
    presence: Element


@dataclass(frozen=True, slots=True)
class AppearsOffline:
    """Whether `user`, whatever resources they have available, is to be shown to everyone
    else as logged out."""

    user: JID


@dataclass(frozen=True, slots=True)
class SessionEvent:
    session: Session


@dataclass(frozen=True, slots=True)
class ResourceUnavailable:
    """A resource stopped being available; `last` when the user has no other one left."""

    session: Session
    presence: Element
    last: bool


@dataclass(frozen=True, slots=True)
class AccountCreated:
    user: JID


@dataclass(frozen=True, slots=True)
class AccountRemoved:
    """An account and every row naming it, on anyone's side, are gone (committed already).

    Services answer for what they keep in memory and tell whoever is online, from `rows`:
    what storage deleted on the other users' side.
    """

    user: JID
    rows: RemovedAccount


@dataclass(frozen=True, slots=True)
class RosterCommitted:
    """`changes` are durable and applied to the cached rosters; subscribers tell whoever is
    online what follows from them."""

    changes: RosterChanges


@dataclass(frozen=True, slots=True)
class BlockListCommitted:
    """`owner`'s XEP-0191 block list changed durably and in memory."""

    owner: JID


@dataclass(frozen=True, slots=True)
class SignInsRevoked:
    """`username`'s sign-ins, by id with their labels, no longer log anyone in; `elsewhere`
    when another node of the cluster revoked them and this node ends its own streams."""

    username: str
    labels: tuple[tuple[str, str], ...]
    elsewhere: bool = False


@dataclass(frozen=True, slots=True)
class QuietHoursChanged:
    """`owner`'s quiet hours or time zone changed durably; `elsewhere` when another node of the
    cluster changed them and this node reads them again."""

    owner: str
    elsewhere: bool = False


@dataclass(frozen=True, slots=True)
class LastSeenChanged:
    """`owner` now shows or hides their last seen; `elsewhere` when another node of the cluster
    changed it and this node reads it again."""

    owner: str
    elsewhere: bool = False


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A resource's presence as it now stands: its last presence stanza (`from` stamped, no
    `to`), priority and state; `stanza` is None once the resource is unavailable."""

    session: Session
    stanza: Element | None
    priority: int = 0
    state: str = "offline"


@dataclass(slots=True)
class StreamFeatures:
    """The features a stream offers at this point; handlers append theirs."""

    stream: Stream
    features: list[Element] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Nonza:
    """A top-level element of an authenticated stream that is not a stanza."""

    stream: object
    element: Element


@dataclass(slots=True)
class DiscoFeatures:
    features: set[str] = field(default_factory=set)
