"""The rounds a group sync links its members in: every pair of members exactly once, and
nobody twice in one round, so that a round's links never wait for each other's locks."""

from __future__ import annotations

from itertools import combinations

import pytest

from chorus_presence.admin.rosters import _rounds
from chorus_presence.xmpp.jid import JID


@pytest.mark.parametrize("size", [2, 3, 4, 5, 8, 11, 200])
def test_every_pair_once_and_nobody_twice_in_a_round(size: int) -> None:
    members = [JID(f"user{n}", "chorus.test") for n in range(size)]
    rounds = list(_rounds(members))
    pairs = [frozenset(pair) for pairs in rounds for pair in pairs]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == {frozenset(pair) for pair in combinations(members, 2)}
    for pairs in rounds:
        seen = [member for pair in pairs for member in pair]
        assert len(seen) == len(set(seen))
    # As few rounds as there can be: each member meets one other per round.
    assert len(rounds) == (size - 1 if size % 2 == 0 else size)
