"""Show when I was last seen across two nodes on one PostgreSQL and Redis: hidden on one node,
the other answers last activity as to a stranger, strips idle time from what it delivers to
the user; shown again there, the first follows."""

from __future__ import annotations

from typing import Any

from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.integration.harness import DOMAIN, TIMEOUT, befriend, online
from tests.integration.harness.cluster import Cluster

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
IDLE = "{urn:xmpp:idle:1}idle"
SINCE = "2026-01-05T09:30:00Z"


def send_idle(client: Any, show: str = "away") -> None:
    presence = client.make_presence(pshow=show)
    presence.append(ET.Element(IDLE, {"since": SINCE}))
    presence.send()


def since_of(presence: Any) -> str | None:
    node = presence.xml.find(IDLE)
    return None if node is None else node.get("since")


def shows(sender: str, show: str) -> Any:
    return lambda p: str(p["from"]) == sender and p["show"] == show


async def last_activity(client: Any, jid: str) -> int | str:
    iq = client.make_iq_get(queryxmlns="jabber:iq:last", ito=jid)
    try:
        result = await iq.send(timeout=TIMEOUT)
    except IqError as error:
        return str(error.iq["error"]["condition"])
    return int(result.xml.find("{jabber:iq:last}query").get("seconds"))


async def set_shown(client: Any, shown: bool) -> None:
    iq = client.make_iq_set()
    iq.append(ET.Element("{urn:chorus:presence:0}last-seen", {"show": str(shown).lower()}))
    await iq.send(timeout=TIMEOUT)


async def test_hiding_on_one_node_holds_on_the_other(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, alice_in = await online(a, "alice")
    bob, bob_in = await online(b, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    alice_in.drain()
    bob_in.drain()
    send_idle(alice)
    seen = await bob_in.expect(shows(f"{ALICE}/test", "away"), "alice idle, across nodes")
    assert since_of(seen) == SINCE

    await set_shown(alice, False)
    again = await bob_in.expect(shows(f"{ALICE}/test", "away"), "alice without idle time")
    assert since_of(again) is None
    # Node b answers for her now as for a stranger, and strips what it delivers to her.
    assert await last_activity(bob, ALICE) == "forbidden"
    send_idle(bob, "xa")
    to_alice = await alice_in.expect(shows(f"{BOB}/test", "xa"), "bob idle, to alice")
    assert since_of(to_alice) is None
    assert await last_activity(alice, BOB) == "forbidden"

    # Shown again from node b: node a follows, in what it delivers to her and answers.
    bob_a, bob_a_in = await online(a, "bob", "on-a")
    phone, phone_in = await online(b, "alice", "phone")
    await bob_a_in.expect(lambda p: str(p["from"]) == f"{ALICE}/phone", "alice's phone")
    await set_shown(phone, True)
    # Sent after the change, it reaches node a after the news of it.
    phone.send_presence(pstatus="back")
    await bob_a_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/phone" and p["status"] == "back", "alice back"
    )
    send_idle(bob_a, "dnd")
    shown = await phone_in.expect(shows(f"{BOB}/on-a", "dnd"), "bob idle, to alice again")
    assert since_of(shown) == SINCE
    assert await last_activity(bob_a, ALICE) == 0
