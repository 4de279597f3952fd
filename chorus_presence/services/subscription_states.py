"""RFC 6121 presence subscription state machine, as pure functions over one roster entry.

Owns the rules of RFC 6121 Appendix A and sections 3.1-3.4 (with pre-approval, 3.4): what a
presence stanza of type subscribe, subscribed, unsubscribe or unsubscribed does to one user's
state for one contact, whether the stanza travels on, whether the user is shown it, whether
the user's roster needs a push, and whether the server answers it on the user's behalf.
Nothing here does I/O: callers load the states, apply these functions, store and route.

Every user is local, so a stanza from user U to contact C is processed twice: first
``outbound(U's state for C, kind)``; then, if that result is routed,
``inbound(C's state for U, kind)``. An ``auto_reply`` from the inbound step travels from C
back to U and goes straight to ``inbound(U's state for C, reply)``: C's new state already
accounts for it, so it must not pass through C's outbound processing again.

Left to callers: storing the subscribe stanza itself and re-delivering it while
``pending_in`` holds (RFC 6121 3.1.3 rule 4), sending presence or "unavailable" after a state
change, and acting on routing errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Subscription = Literal["none", "to", "from", "both"]
Kind = Literal["subscribe", "subscribed", "unsubscribe", "unsubscribed"]

_SUBSCRIPTIONS: dict[tuple[bool, bool], Subscription] = {
    (False, False): "none",
    (True, False): "to",
    (False, True): "from",
    (True, True): "both",
}


def _subscription(to: bool, from_: bool) -> Subscription:
    return _SUBSCRIPTIONS[(to, from_)]


def subscription_of(text: str) -> Subscription:
    """A stored subscription value as the type it is (storage checks it on write)."""
    for value in _SUBSCRIPTIONS.values():
        if value == text:
            return value
    raise ValueError(f"not a subscription: {text!r}")


# The subscriptions that let the owner see the contact's presence, and the contact the owner's.
SEES = frozenset({"to", "both"})
SENDS_TO = frozenset({"from", "both"})


@dataclass(frozen=True, slots=True)
class SubState:
    """One user's subscription state for one contact.

    The nine states of RFC 6121 A.1 are ``subscription`` combined with ``pending_out`` (the
    user asked the contact, ask='subscribe') and ``pending_in`` (the contact asked the user and
    has no answer yet). ``approved`` is a pre-approval of the contact (RFC 6121 3.4).
    ``in_roster`` says whether the contact is an item of the user's roster; only a pending
    inbound request may exist without one (A.1, state 3).
    """

    subscription: Subscription = "none"
    pending_out: bool = False
    pending_in: bool = False
    approved: bool = False
    in_roster: bool = False

    def __post_init__(self) -> None:
        if not self.in_roster and (
            self.subscription != "none" or self.pending_out or self.approved
        ):
            raise ValueError("only a pending inbound request can exist without a roster item")

    @property
    def has_to(self) -> bool:
        """Whether the user is subscribed to the contact's presence."""
        return self.subscription in SEES

    @property
    def has_from(self) -> bool:
        """Whether the contact is subscribed to the user's presence."""
        return self.subscription in SENDS_TO


@dataclass(frozen=True, slots=True)
class OutboundResult:
    """What a stanza the user sends does on the user's side."""

    state: SubState
    """The user's new state for the contact."""
    route: bool
    """Whether the stanza goes on to the contact's inbound processing."""
    push: bool
    """Whether the user's roster item for the contact was added or visibly changed."""


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What a stanza from the contact does on the receiving user's side."""

    state: SubState
    """The receiving user's new state for the sender."""
    deliver: bool
    """Whether to hand the stanza to the receiving user's resources."""
    push: bool
    """Whether the receiving user's roster item for the sender was added or visibly changed."""
    auto_reply: Kind | None
    """A stanza the server sends back to the sender on the receiving user's behalf."""


def _item_changed(old: SubState, new: SubState) -> bool:
    # A roster push carries subscription, ask and approved; pending_in is not in it.
    def visible(state: SubState) -> tuple[Subscription, bool, bool] | None:
        if not state.in_roster:
            return None
        return (state.subscription, state.pending_out, state.approved)

    return visible(old) != visible(new)


def outbound(state: SubState, kind: Kind) -> OutboundResult:
    """Apply a stanza of type ``kind`` that the user sends to the contact (RFC 6121 A.2)."""
    match kind:
        case "subscribe":
            # A.2.1: always routed, even when nothing changes, so the contact's side can answer
            # again; "To" and "Both" take no ask flag.
            new = state if state.has_to else replace(state, pending_out=True, in_roster=True)
            route = True
        case "unsubscribe":
            # A.2.2: always routed.
            new = replace(
                state, subscription=_subscription(False, state.has_from), pending_out=False
            )
            route = True
        case "subscribed":
            if state.has_from:
                # A.2.3 and 3.4.2 rule 1: ignored and not routed (Prosody re-routes it; the RFC
                # says MUST NOT).
                new, route = state, False
            elif state.pending_in:
                # A.2.3 and 3.1.5: the answer to a request. The item is created now if the user
                # never added one, as Prosody does (3.1.3 defers it until approval).
                new = replace(
                    state,
                    subscription=_subscription(state.has_to, True),
                    pending_in=False,
                    approved=False,
                    in_roster=True,
                )
                route = True
            else:
                # A.2.3 and 3.4.2 rules 3-4: a pre-approval, kept on the user's side only.
                new, route = replace(state, approved=True, in_roster=True), False
        case "unsubscribed":
            # A.2.4 and 3.2.2: routed only when it cancels a subscription or denies a request;
            # either way any pre-approval goes.
            route = state.has_from or state.pending_in
            new = replace(
                state,
                subscription=_subscription(state.has_to, False),
                pending_in=False,
                approved=False,
            )
        case _:
            raise ValueError(f"not a subscription stanza type: {kind!r}")
    return OutboundResult(state=new, route=route, push=_item_changed(state, new))


def inbound(state: SubState, kind: Kind) -> InboundResult:
    """Apply a stanza of type ``kind`` that the contact sent to the user (RFC 6121 A.3)."""
    auto_reply: Kind | None = None
    match kind:
        case "subscribe":
            if state.has_from:
                # A.3.1 note 2 and 3.1.3 rule 2: already granted, so the server answers.
                new, deliver, auto_reply = state, False, "subscribed"
            elif state.approved:
                # A.3.1 note 1 and 3.4.2: the pre-approval answers the request and is used up,
                # so a later request after a cancellation is put to the user again. Prosody
                # reaches the same "From" by routing its auto-reply through outbound processing.
                new = replace(state, subscription=_subscription(state.has_to, True), approved=False)
                deliver, auto_reply = False, "subscribed"
            elif state.pending_in:
                # A.3.1: one outstanding request per contact is shown, as in Prosody.
                new, deliver = state, False
            else:
                # A.3.1 and 3.1.3 security warning: noted, but no roster item is created.
                new, deliver = replace(state, pending_in=True), True
        case "subscribed":
            # A.3.3 and 3.1.6: only an answer to the user's own request counts.
            if state.pending_out:
                new = replace(
                    state, subscription=_subscription(True, state.has_from), pending_out=False
                )
            else:
                new = state
            deliver = new != state
        case "unsubscribe":
            # A.3.2 and 3.3.3: also withdraws a pending request. The RFC's SHOULD auto-reply
            # "unsubscribed" is skipped, as in Prosody: the sender's own outbound processing
            # has already left it with nothing that reply could cancel.
            new = replace(state, subscription=_subscription(state.has_to, False), pending_in=False)
            deliver = new != state
        case "unsubscribed":
            # A.3.4 and 3.2.3: cancels the user's subscription or denies the user's request.
            new = replace(
                state, subscription=_subscription(False, state.has_from), pending_out=False
            )
            deliver = new != state
        case _:
            raise ValueError(f"not a subscription stanza type: {kind!r}")
    return InboundResult(
        state=new, deliver=deliver, push=_item_changed(state, new), auto_reply=auto_reply
    )
