"""A model-based test of the subscription state machine: two users exchange random subscription
stanzas and roster changes, driven through `subscription_states.outbound` and `inbound` the way
`services/subscriptions.py` chains them, and checked step by step against an independent model
built from the tables of RFC 6121 Appendix A (with section 3.4 for pre-approval and section
2.5.2 for removing a roster item).

The model knows states only by their Appendix A names ("None + Pending Out", ...). It checks
every transition (new state on both sides, whether the stanza was routed or delivered, the
server's auto-reply, the roster push) and that the two sides always agree: one side's "To" is
the other's "From", one side's pending out is the other's pending in.

Where the RFC leaves a choice, the model makes the one the project documents:
- "SHOULD NOT deliver" (S.N.) is taken as not delivered;
- a pre-approval is used up by the request it answers (3.4.2 leaves this to implementations);
- the "SHOULD auto-reply unsubscribed" of Table 7 is modelled as sent, and must change nothing
  on the other side, which is why the implementation may skip it;
- removing a roster item (2.5.2) also withdraws pending requests either way, so that neither
  side is left waiting on a contact it no longer lists.

Bounded for CI; `CHORUS_LONG_TESTS=1` runs many more examples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from chorus_presence.services.subscription_states import SubState, inbound, outbound

LONG = os.environ.get("CHORUS_LONG_TESTS") == "1"

NONE = "None"
NONE_OUT = "None + Pending Out"
NONE_IN = "None + Pending In"
NONE_OUT_IN = "None + Pending Out+In"
TO = "To"
TO_IN = "To + Pending In"
FROM = "From"
FROM_OUT = "From + Pending Out"
BOTH = "Both"
SAME = "no state change"
PRE_APPROVAL = "pre-approval"
MUST, MUST_NOT, SHOULD_NOT = "MUST", "M.N.", "S.N."

# RFC 6121 Appendix A.2, Tables 2 to 5: existing state -> (route?, new state).
OUTBOUND: dict[str, dict[str, tuple[str, str]]] = {
    "subscribe": {
        NONE: (MUST, NONE_OUT),
        NONE_OUT: (MUST, SAME),
        NONE_IN: (MUST, NONE_OUT_IN),
        NONE_OUT_IN: (MUST, SAME),
        TO: (MUST, SAME),
        TO_IN: (MUST, SAME),
        FROM: (MUST, FROM_OUT),
        FROM_OUT: (MUST, SAME),
        BOTH: (MUST, SAME),
    },
    "unsubscribe": {
        NONE: (MUST, SAME),
        NONE_OUT: (MUST, NONE),
        NONE_IN: (MUST, SAME),
        NONE_OUT_IN: (MUST, NONE_IN),
        TO: (MUST, NONE),
        TO_IN: (MUST, NONE_IN),
        FROM: (MUST, SAME),
        FROM_OUT: (MUST, FROM),
        BOTH: (MUST, FROM),
    },
    "subscribed": {
        NONE: (MUST_NOT, PRE_APPROVAL),
        NONE_OUT: (MUST_NOT, PRE_APPROVAL),
        NONE_IN: (MUST, FROM),
        NONE_OUT_IN: (MUST, FROM_OUT),
        TO: (MUST_NOT, PRE_APPROVAL),
        TO_IN: (MUST, BOTH),
        FROM: (MUST_NOT, SAME),
        FROM_OUT: (MUST_NOT, SAME),
        BOTH: (MUST_NOT, SAME),
    },
    "unsubscribed": {
        NONE: (SHOULD_NOT, SAME),
        NONE_OUT: (SHOULD_NOT, SAME),
        NONE_IN: (MUST, NONE),
        NONE_OUT_IN: (MUST, NONE_OUT),
        TO: (SHOULD_NOT, SAME),
        TO_IN: (MUST, TO),
        FROM: (MUST, NONE),
        FROM_OUT: (MUST, NONE_OUT),
        BOTH: (MUST, TO),
    },
}

# RFC 6121 Appendix A.3, Tables 6 to 9: existing state -> (deliver?, new state, auto-reply).
INBOUND: dict[str, dict[str, tuple[str, str, str | None]]] = {
    "subscribe": {
        NONE: (MUST, NONE_IN, None),
        NONE_OUT: (MUST, NONE_OUT_IN, None),
        NONE_IN: (SHOULD_NOT, SAME, None),
        NONE_OUT_IN: (SHOULD_NOT, SAME, None),
        TO: (MUST, TO_IN, None),
        TO_IN: (SHOULD_NOT, SAME, None),
        FROM: (SHOULD_NOT, SAME, "subscribed"),
        FROM_OUT: (SHOULD_NOT, SAME, "subscribed"),
        BOTH: (SHOULD_NOT, SAME, "subscribed"),
    },
    "unsubscribe": {
        NONE: (SHOULD_NOT, SAME, None),
        NONE_OUT: (SHOULD_NOT, SAME, None),
        NONE_IN: (MUST, NONE, "unsubscribed"),
        NONE_OUT_IN: (MUST, NONE_OUT, "unsubscribed"),
        TO: (SHOULD_NOT, SAME, None),
        TO_IN: (MUST, TO, "unsubscribed"),
        FROM: (MUST, NONE, "unsubscribed"),
        FROM_OUT: (MUST, NONE_OUT, "unsubscribed"),
        BOTH: (MUST, TO, "unsubscribed"),
    },
    "subscribed": {
        NONE: (SHOULD_NOT, SAME, None),
        NONE_OUT: (MUST, TO, None),
        NONE_IN: (SHOULD_NOT, SAME, None),
        NONE_OUT_IN: (MUST, TO_IN, None),
        TO: (SHOULD_NOT, SAME, None),
        TO_IN: (SHOULD_NOT, SAME, None),
        FROM: (SHOULD_NOT, SAME, None),
        FROM_OUT: (MUST, BOTH, None),
        BOTH: (SHOULD_NOT, SAME, None),
    },
    "unsubscribed": {
        NONE: (SHOULD_NOT, SAME, None),
        NONE_OUT: (MUST, NONE, None),
        NONE_IN: (SHOULD_NOT, SAME, None),
        NONE_OUT_IN: (MUST, NONE_IN, None),
        TO: (MUST, NONE, None),
        TO_IN: (MUST, NONE_IN, None),
        FROM: (SHOULD_NOT, SAME, None),
        FROM_OUT: (MUST, FROM, None),
        BOTH: (MUST, FROM, None),
    },
}

# Section 3.4.2: a pre-approved request is answered at once, and the contact gains "from".
APPROVED_REQUEST = {NONE: FROM, NONE_OUT: FROM_OUT, TO: BOTH}
# Section 2.5.2: what removing the contact sends it, by the user's state.
REMOVAL: dict[str, tuple[str, ...]] = {
    NONE: (),
    NONE_OUT: ("unsubscribe",),
    NONE_IN: ("unsubscribed",),
    NONE_OUT_IN: ("unsubscribe", "unsubscribed"),
    TO: ("unsubscribe",),
    TO_IN: ("unsubscribe", "unsubscribed"),
    FROM: ("unsubscribed",),
    FROM_OUT: ("unsubscribe", "unsubscribed"),
    BOTH: ("unsubscribe", "unsubscribed"),
}
# What each Appendix A name says, as (user subscribed to contact, contact subscribed to user,
# user's request pending, contact's request pending).
MEANING = {
    NONE: (False, False, False, False),
    NONE_OUT: (False, False, True, False),
    NONE_IN: (False, False, False, True),
    NONE_OUT_IN: (False, False, True, True),
    TO: (True, False, False, False),
    TO_IN: (True, False, False, True),
    FROM: (False, True, False, False),
    FROM_OUT: (False, True, True, False),
    BOTH: (True, True, False, False),
}


@dataclass(frozen=True)
class Side:
    """One user's view of the other in the model: the Appendix A state, a pre-approval, and
    whether the other is an item of the user's roster."""

    name: str = NONE
    approved: bool = False
    in_roster: bool = False

    @property
    def item(self) -> tuple[str, bool, bool] | None:
        """What a roster push shows: subscription, ask, approved (RFC 6121 section 2.1.2)."""
        if not self.in_roster:
            return None
        to, from_, pending_out, _ = MEANING[self.name]
        subscription = {(False, False): "none", (True, False): "to"}.get(
            (to, from_), "from" if not to else "both"
        )
        return subscription, pending_out, self.approved


def name_of(state: SubState) -> str:
    """The Appendix A name of one of the implementation's states."""
    wanted = (state.has_to, state.has_from, state.pending_out, state.pending_in)
    names = [name for name, meaning in MEANING.items() if meaning == wanted]
    assert names, f"{state} is none of the nine states of RFC 6121 A.1"
    return names[0]


def as_side(state: SubState) -> Side:
    return Side(name_of(state), state.approved, state.in_roster)


@dataclass
class Outcome:
    """What one model step did on the sender's and the receiver's side."""

    sender: Side
    receiver: Side
    routed: bool
    delivered: bool | None
    auto_reply: str | None
    reply_delivered: bool | None
    sender_pushed: bool
    receiver_pushed: bool


def model_outbound(side: Side, kind: str) -> tuple[Side, bool]:
    """Table 2 to 5 for the user sending `kind`: the new side and whether it is routed."""
    route, new = OUTBOUND[kind][side.name]
    result = side
    if new == PRE_APPROVAL:
        # Section 3.4.2 rules 3 and 4: noted on the item, created if need be.
        result = replace(side, approved=True, in_roster=True)
    elif new != SAME:
        result = replace(side, name=new)
    if kind == "subscribe":
        # Section 3.1.2: the contact is on the roster, with ask='subscribe' where pending.
        result = replace(result, in_roster=True)
    if kind == "subscribed" and route == MUST:
        # Section 3.1.5: approving a request puts the requester on the roster.
        result = replace(result, in_roster=True, approved=False)
    if kind == "unsubscribed":
        # Section 3.4 implementation note: "unsubscribed" cancels a pre-approval.
        result = replace(result, approved=False)
    return result, route == MUST


def model_inbound(side: Side, kind: str) -> tuple[Side, bool, str | None]:
    """Tables 6 to 9 for the user receiving `kind`: new side, delivered, auto-reply."""
    if kind == "subscribe" and side.approved:
        # Section 3.4.2: not delivered, answered "subscribed" on the user's behalf.
        return replace(side, name=APPROVED_REQUEST[side.name], approved=False), False, "subscribed"
    deliver, new, reply = INBOUND[kind][side.name]
    return (side if new == SAME else replace(side, name=new)), deliver == MUST, reply


def model_exchange(sender: Side, receiver: Side, kind: str) -> Outcome:
    sent, routed = model_outbound(sender, kind)
    received, delivered, reply, reply_delivered = receiver, None, None, None
    answered = sent
    if routed:
        received, delivered, reply = model_inbound(receiver, kind)
        if reply == "unsubscribed":
            # Table 7's SHOULD: the sender's own "unsubscribe" has already left it with no
            # subscription or request the reply could cancel, so it changes nothing (Table 9)
            # and is not delivered. Skipping it is then indistinguishable from sending it.
            unchanged, shown, _ = model_inbound(sent, reply)
            assert (unchanged, shown) == (sent, False), (sent, unchanged, shown)
            reply = None
        elif reply is not None:
            answered, reply_delivered, _ = model_inbound(sent, reply)
    return Outcome(
        sender=answered,
        receiver=received,
        routed=routed,
        delivered=delivered,
        auto_reply=reply,
        reply_delivered=reply_delivered,
        sender_pushed=answered.item != sender.item,
        receiver_pushed=received.item != receiver.item,
    )


def model_removal(remover: Side, contact: Side) -> tuple[Side, Side]:
    """Section 2.5.2: the item goes, and the contact gets the cancellations."""
    for kind in REMOVAL[remover.name]:
        contact, _delivered, _reply = model_inbound(contact, kind)
    return Side(), contact


def implementation_exchange(
    sender: SubState, receiver: SubState, kind: str
) -> tuple[Outcome, SubState, SubState]:
    """The chain of `SubscriptionService.exchange` for two local users with no policy: what
    it did, and the two new states."""
    sent = outbound(sender, kind)
    user_after, receiver_after = sent.state, receiver
    sender_pushed, receiver_pushed = sent.push, False
    delivered = reply = reply_delivered = None
    if sent.route:
        received = inbound(receiver, kind)
        receiver_after, delivered = received.state, received.deliver
        receiver_pushed, reply = received.push, received.auto_reply
        if reply is not None:
            # The auto-reply goes straight to the sender's inbound processing.
            answer = inbound(user_after, reply)
            user_after, reply_delivered = answer.state, answer.deliver
            sender_pushed = sender_pushed or answer.push
    outcome = Outcome(
        sender=as_side(user_after),
        receiver=as_side(receiver_after),
        routed=sent.route,
        delivered=delivered,
        auto_reply=reply,
        reply_delivered=reply_delivered,
        sender_pushed=sender_pushed,
        receiver_pushed=receiver_pushed,
    )
    return outcome, user_after, receiver_after


def implementation_removal(remover: SubState, contact: SubState) -> tuple[SubState, SubState]:
    """The chain of `SubscriptionService.remove_contact`."""
    cancels = []
    if remover.subscription in ("to", "both") or remover.pending_out:
        cancels.append("unsubscribe")
    if remover.subscription in ("from", "both") or remover.pending_in:
        cancels.append("unsubscribed")
    for kind in cancels:
        contact = inbound(contact, kind).state
    return SubState(), contact


KINDS = st.sampled_from(("subscribe", "subscribed", "unsubscribe", "unsubscribed"))
USERS = st.sampled_from((0, 1))


class SubscriptionMachine(RuleBasedStateMachine):
    """Users 0 and 1; `states[u]` is user u's state for the other, `model[u]` the model's."""

    def __init__(self) -> None:
        super().__init__()
        self.states = [SubState(), SubState()]
        self.model = [Side(), Side()]

    @rule(sender=USERS, kind=KINDS)
    def send(self, sender: int, kind: str) -> None:
        receiver = 1 - sender
        expected = model_exchange(self.model[sender], self.model[receiver], kind)
        actual, sender_state, receiver_state = implementation_exchange(
            self.states[sender], self.states[receiver], kind
        )
        assert actual == expected, (
            f"{kind} from {self.model[sender]} to {self.model[receiver]}: "
            f"expected {expected}, got {actual}"
        )
        self.states[sender], self.states[receiver] = sender_state, receiver_state
        self.model[sender], self.model[receiver] = expected.sender, expected.receiver

    @rule(user=USERS)
    def add_to_roster(self, user: int) -> None:
        """A roster set: the other becomes an item, the subscription state untouched (2.3)."""
        self.states[user] = replace(self.states[user], in_roster=True)
        self.model[user] = replace(self.model[user], in_roster=True)

    @rule(user=USERS)
    def remove_from_roster(self, user: int) -> None:
        if not self.states[user].in_roster:
            # Nothing to remove: the server answers item-not-found and changes nothing.
            assert not self.model[user].in_roster
            return
        other = 1 - user
        self.states[user], self.states[other] = implementation_removal(
            self.states[user], self.states[other]
        )
        self.model[user], self.model[other] = model_removal(self.model[user], self.model[other])
        assert as_side(self.states[user]) == self.model[user]
        assert as_side(self.states[other]) == self.model[other]

    @invariant()
    def implementation_matches_the_model(self) -> None:
        assert [as_side(s) for s in self.states] == self.model

    @invariant()
    def the_two_sides_agree(self) -> None:
        (to0, from0, out0, in0), (to1, from1, out1, in1) = (
            MEANING[side.name] for side in self.model
        )
        assert to0 == from1 and to1 == from0, self.model
        assert out0 == in1 and out1 == in0, self.model

    @invariant()
    def roster_items_hold_what_needs_one(self) -> None:
        for side in self.model:
            to, from_, pending_out, _ = MEANING[side.name]
            if to or from_ or pending_out or side.approved:
                assert side.in_roster, side
            # A pre-approval only waits for a request that has not come.
            if side.approved:
                assert side.name in APPROVED_REQUEST, side


SubscriptionMachine.TestCase.settings = settings(
    max_examples=5000 if LONG else 300,
    stateful_step_count=50 if LONG else 30,
    deadline=None,
)
test_subscription_state_machine_follows_rfc_6121 = SubscriptionMachine.TestCase
