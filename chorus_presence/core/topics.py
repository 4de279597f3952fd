"""The names of the bus's topics, in one place, so a subscriber and the code that fires an
event cannot drift apart.

Stanzas from a local session fire `<kind>/out` first, then, by where they are addressed,
`<kind>/in/bare`, `<kind>/in/full` or `<kind>/in/server`; IQ gets and sets answered by the server
fire `iq-<type>/<scope>/<payload>`, where the payload is the Clark name of the IQ's child.
Lifecycle topics carry the events in `core.events`.
"""

from __future__ import annotations

from typing import Literal

IqScope = Literal["server", "bare", "preauth"]
IqType = Literal["get", "set"]

# Stanzas, by direction and addressing (event: StanzaEvent; IQ gets and sets: IqRequest).
MESSAGE_OUT = "message/out"
MESSAGE_IN_BARE = "message/in/bare"
MESSAGE_IN_FULL = "message/in/full"
MESSAGE_IN_SERVER = "message/in/server"
PRESENCE_OUT = "presence/out"
PRESENCE_IN_BARE = "presence/in/bare"
PRESENCE_IN_FULL = "presence/in/full"
IQ_OUT = "iq/out"
IQ_IN_BARE = "iq/in/bare"
IQ_IN_FULL = "iq/in/full"

# Presence audiences (event: Audience): who receives a user's presence broadcast, and whose
# presence a user is shown when they come online. Filters take out who may not.
PRESENCE_AUDIENCE = "presence/audience"
PRESENCE_VIEW = "presence/view"
# What contacts see of a user with no available resource (event: OfflineView; the answer is
# the presence element, or None for plain unavailable).
PRESENCE_OFFLINE = "presence/offline"
# A presence the server made for a user (event: GeneratedPresence, whose element subscribers may
# add to, e.g. XEP-0319 idle time); before it goes to anyone.
PRESENCE_GENERATED = "presence/generated"
# Whether a user is shown to everyone else as logged out while resources are available (event:
# AppearsOffline; the answer is True, or None for a user shown as they are).
PRESENCE_HIDDEN = "presence/hidden"

# A request to see a user's presence, decided by the user's settings (event:
# SubscriptionRequest; the answer is the decision).
SUBSCRIPTION_REQUEST = "subscription/request"
# The features disco#info lists for the server (event: DiscoFeatures; handlers add theirs).
DISCO_FEATURES = "disco/features"
# The features disco#info lists at an account's bare JID: what the server answers there for
# the user and for whoever may see the user's presence (event: DiscoFeatures).
DISCO_ACCOUNT_FEATURES = "disco/account-features"

# Lifecycles.
SESSION_BOUND = "session/bound"
SESSION_ENDED = "session/ended"
SESSION_SUSPENDED = "session/suspended"
SESSION_RESUMED = "session/resumed"
RESOURCE_AVAILABLE = "resource/available"
RESOURCE_UNAVAILABLE = "resource/unavailable"
ACCOUNT_CREATED = "account/created"
ACCOUNT_REMOVED = "account/removed"
# Roster changes are durable and the cached rosters follow them (event: RosterCommitted).
ROSTER_COMMITTED = "roster/committed"
# A user's XEP-0191 block list changed durably (event: BlockListCommitted).
BLOCK_LIST_COMMITTED = "block-list/committed"
# Sign-ins revoked durably (`SignInsRevoked`): the streams logged in under them end.
SIGN_INS_REVOKED = "sign-ins/revoked"
# A user's quiet hours or time zone changed durably (`QuietHoursChanged`): each node plans the
# user's boundaries again.
QUIET_HOURS_CHANGED = "quiet-hours/changed"
# A user's "Show when I was last seen" changed durably (`LastSeenChanged`): each node reads it
# again.
LAST_SEEN_CHANGED = "last-seen/changed"
# The presence of a resource of this node changed: a new available presence, or unavailable
# (event: PresenceChanged; `notify_sync`, from the presence path).
RESOURCE_PRESENCE = "resource/presence"
SERVER_STOPPING = "server/stopping"

# The stream layer (event: StreamFeatures; handlers add their feature elements).
FEATURES_PREAUTH = "stream/features/preauth"
FEATURES_POSTAUTH = "stream/features/postauth"


def iq(iq_type: IqType, scope: IqScope, payload: str) -> str:
    """An IQ get or set the server answers, e.g. iq("get", "server", "{urn:xmpp:ping}ping")."""
    return f"iq-{iq_type}/{scope}/{payload}"


def nonza(tag: str) -> str:
    """A top-level element other than a stanza after authentication, by its Clark name."""
    return f"nonza/{tag}"


def disco_info(node: str) -> str:
    """disco#info on a node of the server JID (event: IqRequest; the answer is the query)."""
    return f"disco/info/{node}"


def disco_items(node: str) -> str:
    return f"disco/items/{node}"
