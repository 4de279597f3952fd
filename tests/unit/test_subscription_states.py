"""RFC 6121 subscription state machine: the Appendix A tables, pre-approval, two-sided runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chorus_presence.services.subscription_states import (
    InboundResult,
    Kind,
    OutboundResult,
    SubState,
    inbound,
    outbound,
)

# The nine states of RFC 6121 A.1, each with the contact already a roster item.
STATES: dict[str, SubState] = {
    "None": SubState(in_roster=True),
    "None + Pending Out": SubState(pending_out=True, in_roster=True),
    "None + Pending In": SubState(pending_in=True, in_roster=True),
    "None + Pending Out+In": SubState(pending_out=True, pending_in=True, in_roster=True),
    "To": SubState("to", in_roster=True),
    "To + Pending In": SubState("to", pending_in=True, in_roster=True),
    "From": SubState("from", in_roster=True),
    "From + Pending Out": SubState("from", pending_out=True, in_roster=True),
    "Both": SubState("both", in_roster=True),
}

SAME = "no state change"
PRE_APPROVAL = "pre-approval"

# Each row: existing state, whether the stanza is routed (outbound) or delivered (inbound), where
# MUST is yes and M.N. and S.N. are no, the new state, whether the roster needs a push, and for
# inbound stanzas the server's auto-reply.
OutRow = tuple[str, bool, str, bool]
InRow = tuple[str, bool, str, bool, Kind | None]

# RFC 6121 A.2.1, Table 2: outbound "subscribe".
OUT_SUBSCRIBE: list[OutRow] = [
    ("None", True, "None + Pending Out", True),
    ("None + Pending Out", True, SAME, False),
    ("None + Pending In", True, "None + Pending Out+In", True),
    ("None + Pending Out+In", True, SAME, False),
    ("To", True, SAME, False),
    ("To + Pending In", True, SAME, False),
    ("From", True, "From + Pending Out", True),
    ("From + Pending Out", True, SAME, False),
    ("Both", True, SAME, False),
]

# RFC 6121 A.2.2, Table 3: outbound "unsubscribe".
OUT_UNSUBSCRIBE: list[OutRow] = [
    ("None", True, SAME, False),
    ("None + Pending Out", True, "None", True),
    ("None + Pending In", True, SAME, False),
    ("None + Pending Out+In", True, "None + Pending In", True),
    ("To", True, "None", True),
    ("To + Pending In", True, "None + Pending In", True),
    ("From", True, SAME, False),
    ("From + Pending Out", True, "From", True),
    ("Both", True, "From", True),
]

# RFC 6121 A.2.3, Table 4: outbound "subscribed".
OUT_SUBSCRIBED: list[OutRow] = [
    ("None", False, PRE_APPROVAL, True),
    ("None + Pending Out", False, PRE_APPROVAL, True),
    ("None + Pending In", True, "From", True),
    ("None + Pending Out+In", True, "From + Pending Out", True),
    ("To", False, PRE_APPROVAL, True),
    ("To + Pending In", True, "Both", True),
    ("From", False, SAME, False),
    ("From + Pending Out", False, SAME, False),
    ("Both", False, SAME, False),
]

# RFC 6121 A.2.4, Table 5: outbound "unsubscribed". Denying a request changes nothing the
# roster item shows, so only the rows that cancel a subscription push.
OUT_UNSUBSCRIBED: list[OutRow] = [
    ("None", False, SAME, False),
    ("None + Pending Out", False, SAME, False),
    ("None + Pending In", True, "None", False),
    ("None + Pending Out+In", True, "None + Pending Out", False),
    ("To", False, SAME, False),
    ("To + Pending In", True, "To", False),
    ("From", True, "None", True),
    ("From + Pending Out", True, "None + Pending Out", True),
    ("Both", True, "To", True),
]

# RFC 6121 A.3.1, Table 6: inbound "subscribe". Note [2]: the server answers "subscribed".
IN_SUBSCRIBE: list[InRow] = [
    ("None", True, "None + Pending In", False, None),
    ("None + Pending Out", True, "None + Pending Out+In", False, None),
    ("None + Pending In", False, SAME, False, None),
    ("None + Pending Out+In", False, SAME, False, None),
    ("To", True, "To + Pending In", False, None),
    ("To + Pending In", False, SAME, False, None),
    ("From", False, SAME, False, "subscribed"),
    ("From + Pending Out", False, SAME, False, "subscribed"),
    ("Both", False, SAME, False, "subscribed"),
]

# RFC 6121 A.3.2, Table 7: inbound "unsubscribe". Note [1]'s SHOULD auto-reply "unsubscribed"
# is not done, as in Prosody.
IN_UNSUBSCRIBE: list[InRow] = [
    ("None", False, SAME, False, None),
    ("None + Pending Out", False, SAME, False, None),
    ("None + Pending In", True, "None", False, None),
    ("None + Pending Out+In", True, "None + Pending Out", False, None),
    ("To", False, SAME, False, None),
    ("To + Pending In", True, "To", False, None),
    ("From", True, "None", True, None),
    ("From + Pending Out", True, "None + Pending Out", True, None),
    ("Both", True, "To", True, None),
]

# RFC 6121 A.3.3, Table 8: inbound "subscribed".
IN_SUBSCRIBED: list[InRow] = [
    ("None", False, SAME, False, None),
    ("None + Pending Out", True, "To", True, None),
    ("None + Pending In", False, SAME, False, None),
    ("None + Pending Out+In", True, "To + Pending In", True, None),
    ("To", False, SAME, False, None),
    ("To + Pending In", False, SAME, False, None),
    ("From", False, SAME, False, None),
    ("From + Pending Out", True, "Both", True, None),
    ("Both", False, SAME, False, None),
]

# RFC 6121 A.3.4, Table 9: inbound "unsubscribed".
IN_UNSUBSCRIBED: list[InRow] = [
    ("None", False, SAME, False, None),
    ("None + Pending Out", True, "None", True, None),
    ("None + Pending In", False, SAME, False, None),
    ("None + Pending Out+In", True, "None + Pending In", True, None),
    ("To", True, "None", True, None),
    ("To + Pending In", True, "None + Pending In", True, None),
    ("From", False, SAME, False, None),
    ("From + Pending Out", True, "From", True, None),
    ("Both", True, "From", True, None),
]

OUTBOUND_TABLES: list[tuple[str, Kind, list[OutRow]]] = [
    ("A.2.1", "subscribe", OUT_SUBSCRIBE),
    ("A.2.2", "unsubscribe", OUT_UNSUBSCRIBE),
    ("A.2.3", "subscribed", OUT_SUBSCRIBED),
    ("A.2.4", "unsubscribed", OUT_UNSUBSCRIBED),
]
INBOUND_TABLES: list[tuple[str, Kind, list[InRow]]] = [
    ("A.3.1", "subscribe", IN_SUBSCRIBE),
    ("A.3.2", "unsubscribe", IN_UNSUBSCRIBE),
    ("A.3.3", "subscribed", IN_SUBSCRIBED),
    ("A.3.4", "unsubscribed", IN_UNSUBSCRIBED),
]


def _cases(
    tables: list[tuple[str, Kind, list[OutRow]]] | list[tuple[str, Kind, list[InRow]]],
) -> list[Any]:
    return [
        pytest.param(kind, *row, id=f"{section} {kind} from {row[0]}")
        for section, kind, rows in tables
        for row in rows
    ]


def _expected(existing: str, new: str) -> SubState:
    if new == SAME:
        return STATES[existing]
    if new == PRE_APPROVAL:
        return SubState(
            STATES[existing].subscription,
            pending_out=STATES[existing].pending_out,
            approved=True,
            in_roster=True,
        )
    return STATES[new]


def test_tables_cover_every_state() -> None:
    for _, _, rows in [*OUTBOUND_TABLES, *INBOUND_TABLES]:
        assert [row[0] for row in rows] == list(STATES)


@pytest.mark.parametrize(("kind", "existing", "route", "new", "push"), _cases(OUTBOUND_TABLES))
def test_outbound_table(kind: Kind, existing: str, route: bool, new: str, push: bool) -> None:
    assert outbound(STATES[existing], kind) == OutboundResult(
        state=_expected(existing, new), route=route, push=push
    )


@pytest.mark.parametrize(
    ("kind", "existing", "deliver", "new", "push", "reply"), _cases(INBOUND_TABLES)
)
def test_inbound_table(
    kind: Kind, existing: str, deliver: bool, new: str, push: bool, reply: Kind | None
) -> None:
    assert inbound(STATES[existing], kind) == InboundResult(
        state=_expected(existing, new), deliver=deliver, push=push, auto_reply=reply
    )


# Without a roster item (A.1 implementation note: an unknown contact is in state "None").


def test_outbound_subscribe_adds_the_item() -> None:
    assert outbound(SubState(), "subscribe") == OutboundResult(
        state=SubState(pending_out=True, in_roster=True), route=True, push=True
    )


def test_inbound_subscribe_records_the_request_without_an_item() -> None:
    # RFC 6121 3.1.3 security warning: no item until the user approves.
    assert inbound(SubState(), "subscribe") == InboundResult(
        state=SubState(pending_in=True), deliver=True, push=False, auto_reply=None
    )


def test_approving_a_request_adds_the_item() -> None:
    assert outbound(SubState(pending_in=True), "subscribed") == OutboundResult(
        state=SubState("from", in_roster=True), route=True, push=True
    )


def test_denying_a_request_without_an_item_pushes_nothing() -> None:
    assert outbound(SubState(pending_in=True), "unsubscribed") == OutboundResult(
        state=SubState(), route=True, push=False
    )


def test_withdrawn_request_without_an_item_is_forgotten() -> None:
    # RFC 6121 3.3.3: the record of the request goes, there is no item to push.
    assert inbound(SubState(pending_in=True), "unsubscribe") == InboundResult(
        state=SubState(), deliver=True, push=False, auto_reply=None
    )


@pytest.mark.parametrize("kind", ["unsubscribe", "unsubscribed"])
def test_cancelling_nothing_adds_no_item(kind: Kind) -> None:
    assert outbound(SubState(), kind).state == SubState()
    assert not outbound(SubState(), kind).push


@pytest.mark.parametrize("kind", ["subscribed", "unsubscribe", "unsubscribed"])
def test_stanzas_from_strangers_are_dropped(kind: Kind) -> None:
    assert inbound(SubState(), kind) == InboundResult(
        state=SubState(), deliver=False, push=False, auto_reply=None
    )


# Pre-approval, RFC 6121 3.4.


def test_pre_approval_creates_the_item_and_is_not_routed() -> None:
    # 3.4.2 rule 4.
    assert outbound(SubState(), "subscribed") == OutboundResult(
        state=SubState(approved=True, in_roster=True), route=False, push=True
    )


def test_repeated_pre_approval_changes_nothing() -> None:
    approved = SubState(approved=True, in_roster=True)
    assert outbound(approved, "subscribed") == OutboundResult(
        state=approved, route=False, push=False
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (SubState(approved=True, in_roster=True), SubState("from", in_roster=True)),
        (
            SubState(pending_out=True, approved=True, in_roster=True),
            SubState("from", pending_out=True, in_roster=True),
        ),
        (SubState("to", approved=True, in_roster=True), SubState("both", in_roster=True)),
    ],
)
def test_pre_approval_answers_the_request(before: SubState, after: SubState) -> None:
    # 3.4.2: MUST NOT deliver, MUST answer "subscribed"; A.3.1 note [1]: straight to "From".
    assert inbound(before, "subscribe") == InboundResult(
        state=after, deliver=False, push=True, auto_reply="subscribed"
    )


def test_unsubscribed_cancels_a_pre_approval_without_routing() -> None:
    # 3.2.2 rule 2 and the 3.4.2 implementation note: push the item without 'approved'.
    assert outbound(SubState("to", approved=True, in_roster=True), "unsubscribed") == (
        OutboundResult(state=SubState("to", in_roster=True), route=False, push=True)
    )


def test_item_only_state_is_rejected() -> None:
    with pytest.raises(ValueError):
        SubState("to")
    with pytest.raises(ValueError):
        SubState(approved=True)


@pytest.mark.parametrize("function", [outbound, inbound])
def test_other_presence_types_are_rejected(function: Callable[[SubState, Any], object]) -> None:
    with pytest.raises(ValueError):
        function(SubState(), "probe")


# Two local users, each stanza processed on both sides.


def exchange(users: dict[str, SubState], sender: str, kind: Kind) -> None:
    """Send ``kind`` from ``sender`` to the other user; ``users[x]`` is x's state for the other."""
    receiver = "B" if sender == "A" else "A"
    result = outbound(users[sender], kind)
    users[sender] = result.state
    deliveries = [(sender, receiver, kind)] if result.route else []
    while deliveries:
        source, target, stanza = deliveries.pop(0)
        answer = inbound(users[target], stanza)
        users[target] = answer.state
        if answer.auto_reply is not None:
            deliveries.append((target, source, answer.auto_reply))


KINDS: list[Kind] = ["subscribe", "subscribed", "unsubscribe", "unsubscribed"]


@given(st.lists(st.tuples(st.sampled_from("AB"), st.sampled_from(KINDS)), max_size=40))
def test_both_sides_stay_consistent(events: list[tuple[str, Kind]]) -> None:
    users = {"A": SubState(), "B": SubState()}
    for sender, kind in events:
        exchange(users, sender, kind)
        for user, other in (("A", "B"), ("B", "A")):
            mine, theirs = users[user], users[other]
            assert mine.has_to == theirs.has_from
            # Stronger than "pending out implies pending in or granted": every request in
            # flight is recorded on the other side, and nothing else is.
            assert mine.pending_out == theirs.pending_in
            # A pre-approval only stands while nothing has been asked or granted.
            assert not mine.approved or not (mine.pending_in or mine.has_from)


def test_pre_approved_subscription_between_two_users() -> None:
    users = {"A": SubState(), "B": SubState()}
    exchange(users, "B", "subscribed")
    assert users == {"A": SubState(), "B": SubState(approved=True, in_roster=True)}
    exchange(users, "A", "subscribe")
    assert users == {"A": SubState("to", in_roster=True), "B": SubState("from", in_roster=True)}
