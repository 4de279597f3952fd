"""A status that clears itself across two nodes on one PostgreSQL and Redis: set on one node
after the other started, it is what the user's next resource on the other node takes on, and
once ended by hand there, the first node's next login does not bring it back."""

from __future__ import annotations

from typing import Any

from slixmpp.xmlstream import ET

from tests.integration.harness import DOMAIN, befriend, online
from tests.integration.harness.cluster import Cluster

ALICE = f"alice@{DOMAIN}"
STATE = "{urn:chorus:presence:0}state"


def from_resource(resource: str, state: str) -> Any:
    def matches(presence: Any) -> bool:
        node = presence.xml.find(STATE)
        return (
            str(presence["from"]) == f"{ALICE}/{resource}"
            and node is not None
            and node.text == state
        )

    return matches


async def test_a_state_set_on_one_node_is_taken_on_at_a_login_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    desk, desk_in = await online(a, "alice", "desk")
    bob, bob_in = await online(b, "bob")
    await befriend(desk, desk_in, bob, bob_in)
    bob_in.drain()

    presence = desk.make_presence(pshow="dnd")
    presence.append(ET.Element(STATE, {"for": "PT1H"}))
    presence.xml.find(STATE).text = "in-meeting"
    presence.send()
    seen = await bob_in.expect(from_resource("desk", "in-meeting"), "desk in a meeting")
    until = seen.xml.find(STATE).get("until")
    assert until is not None

    # Node b started before the state was set: what its login takes on comes from storage.
    desk.disconnect()
    await bob_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/desk" and p["type"] == "unavailable", "desk gone"
    )
    # A plain initial presence, which takes on the state in force (online() would await a
    # plain Available coming back).
    phone = await b.login("alice", resource="phone")
    phone.send_presence()
    restored = await bob_in.expect(from_resource("phone", "in-meeting"), "the phone restored")
    assert restored.xml.find(STATE).get("until") == until

    # Ended by hand on node b, it stays ended for a login on node a.
    phone.send_presence()
    await bob_in.expect(from_resource("phone", "available"), "the phone available")
    laptop = await a.login("alice", resource="laptop")
    laptop.send_presence()
    back = await bob_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/laptop" and p["type"] != "unavailable",
        "the laptop's presence",
    )
    state = back.xml.find(STATE)
    assert state is None or (state.text == "available" and state.get("until") is None)
