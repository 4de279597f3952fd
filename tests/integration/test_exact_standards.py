"""Where the letter of the standards matters, with real clients: presence errors routed like
other presence (RFC 6121 section 8.5), duplicate roster groups refused (RFC 6121 section
2.3.3), service discovery at an account's bare JID (XEP-0030, RFC 6121 section 8.5.2.1.3) that
tells strangers nothing, presence states forwarded in their canonical form, and the "Not logged
in" presence withdrawn when the user comes back."""

from __future__ import annotations

from typing import Any

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Harness,
    Inbox,
    link,
    online,
    presence_of,
    raw_login,
    roster_of,
    sync,
    visibility,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
# Never registered.
NOBODY = f"nobody@{DOMAIN}"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
LAST = "jabber:iq:last"
CHORUS_PRESENCE = "urn:chorus:presence:0"
STATE = f"{{{CHORUS_PRESENCE}}}state"
SM = "urn:xmpp:sm:3"
PLAINTEXT = {"tls": {"required": False}}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


def presence_error(to: str, marker: str) -> str:
    """A presence error as a client sends one back, with a marker to recognise it by."""
    return (
        f"<presence type='error' to='{to}' id='{marker}'>"
        f"<error type='cancel'><remote-server-not-found xmlns='{STANZAS}'/></error>"
        "</presence>"
    )


def from_user(inbox: Inbox, user: str) -> list[Any]:
    """Everything `inbox` received and nobody claimed, from any JID of `user`."""
    return [stanza for stanza in inbox.drain() if stanza["from"].bare == user]


# Presence errors (RFC 6121 section 8.5)


async def test_presence_error_to_a_bare_jid_reaches_every_available_resource(
    users: Harness,
) -> None:
    _, one_in = await online(users, "alice", "one")
    _, two_in = await online(users, "alice", "two")
    bob, _ = await online(users, "bob")
    bob.send_raw(presence_error(ALICE, "e1"))
    for inbox in (one_in, two_in):
        error = await inbox.expect(
            lambda p: p["type"] == "error" and p["id"] == "e1", "the presence error"
        )
        assert str(error["from"]) == f"{BOB}/test"
        # Delivered as addressed (RFC 6121 section 8.5.2.1): the 'to' is not rewritten.
        assert str(error["to"]) == ALICE
        assert error["error"]["condition"] == "remote-server-not-found"
        assert error["error"]["type"] == "cancel"


async def test_presence_error_to_a_full_jid_reaches_that_resource_only(users: Harness) -> None:
    one, one_in = await online(users, "alice", "one")
    _, two_in = await online(users, "alice", "two")
    bob, _ = await online(users, "bob")
    bob.send_raw(presence_error(f"{ALICE}/two", "e2"))
    error = await two_in.expect(lambda p: p["id"] == "e2", "the presence error")
    assert error["type"] == "error" and str(error["to"]) == f"{ALICE}/two"
    await sync(bob, one)
    assert not [p for p in from_user(one_in, BOB) if p["type"] == "error"]


async def test_presence_error_tells_the_sender_nothing(users: Harness) -> None:
    """Nobody online, nobody at all, a resource that is not there, a block: each is silently
    ignored (RFC 6121 sections 8.5.2.2.2 and 8.5.3.2.2), the same for the sender every time."""
    await users.add_user("dave")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    carol.register_plugin("xep_0191")
    await carol.plugin["xep_0191"].block([BOB], timeout=TIMEOUT)
    for index, to in enumerate(
        (f"dave@{DOMAIN}", f"dave@{DOMAIN}/gone", NOBODY, f"{CAROL}/elsewhere", CAROL)
    ):
        bob.send_raw(presence_error(to, f"quiet{index}"))
    await sync(bob, carol, bob)
    assert [stanza for stanza in bob_in.drain() if stanza["from"].bare != BOB] == []
    # carol blocks bob: nothing of his reaches her (XEP-0191 section 3.5).
    assert from_user(carol_in, BOB) == []


# Roster sets (RFC 6121 section 2.3.3)


async def test_roster_set_with_a_duplicate_group_is_refused(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    iq = alice.make_iq_set()
    query = ET.Element("{jabber:iq:roster}query")
    item = ET.SubElement(query, "{jabber:iq:roster}item", {"jid": BOB})
    for name in ("Friends", "Work", "Friends"):
        ET.SubElement(item, "{jabber:iq:roster}group").text = name
    iq.append(query)
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=TIMEOUT)
    assert caught.value.condition == "bad-request"
    assert "'Friends'" in caught.value.text
    assert BOB not in await roster_of(alice)


# Service discovery at an account (XEP-0030, RFC 6121 section 8.5.2.1.3)


async def disco(client: Any, namespace: str, to: str) -> ET.Element:
    """The query of a disco#info or disco#items result, or raises IqError."""
    iq = client.make_iq_get(queryxmlns=namespace, ito=to)
    result = await iq.send(timeout=TIMEOUT)
    query = result.xml.find(f"{{{namespace}}}query")
    assert query is not None
    return query


def account_info(query: ET.Element) -> tuple[set[tuple[str, str]], set[str]]:
    identities = {
        (node.get("category"), node.get("type")) for node in query.iter(f"{{{DISCO_INFO}}}identity")
    }
    features = {node.get("var") for node in query.iter(f"{{{DISCO_INFO}}}feature")}
    return identities, features


async def refusal(client: Any, namespace: str, to: str) -> bytes:
    """The error element answering a disco query, without the addresses around it."""
    with pytest.raises(IqError) as caught:
        await disco(client, namespace, to)
    error = caught.value.iq.xml.find("{jabber:client}error")
    assert error is not None
    return ET.tostring(error)


async def test_disco_info_at_ones_own_bare_jid(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    identities, features = account_info(await disco(alice, DISCO_INFO, ALICE))
    assert identities == {("account", "registered")}
    assert {DISCO_INFO, DISCO_ITEMS, LAST} <= features
    # Only what works at an account: the server's own services are at the domain.
    assert "urn:xmpp:ping" not in features and "jabber:iq:register" not in features
    items = await disco(alice, DISCO_ITEMS, ALICE)
    assert list(items) == []
    # Every feature listed works there: last activity of one's own account.
    iq = alice.make_iq_get(queryxmlns=LAST, ito=ALICE)
    assert (await iq.send(timeout=TIMEOUT))["type"] == "result"


async def test_disco_info_at_a_contacts_bare_jid(users: Harness) -> None:
    await link(users, "alice", "bob")
    alice, _ = await online(users, "alice")
    bob, _ = await online(users, "bob")
    own = account_info(await disco(alice, DISCO_INFO, ALICE))
    assert account_info(await disco(bob, DISCO_INFO, ALICE)) == own
    assert list(await disco(bob, DISCO_ITEMS, ALICE)) == []
    iq = bob.make_iq_get(queryxmlns=LAST, ito=ALICE)
    assert (await iq.send(timeout=TIMEOUT))["type"] == "result"


async def test_disco_at_a_strangers_bare_jid_is_what_a_nonexistent_account_gets(
    users: Harness,
) -> None:
    """carol may not see alice's presence, and bob is on alice's block list: both get what
    asking about an account that does not exist gets, online or not."""
    await users.add_user("dave")
    await link(users, "alice", "bob")
    await link(users, "alice", "dave")
    alice, _ = await online(users, "alice")
    alice.register_plugin("xep_0191")
    await alice.plugin["xep_0191"].block([BOB], timeout=TIMEOUT)
    bob, _ = await online(users, "bob")
    carol, _ = await online(users, "carol")
    dave, dave_in = await online(users, "dave")
    for namespace in (DISCO_INFO, DISCO_ITEMS):
        nobody = await refusal(carol, namespace, NOBODY)
        assert await refusal(carol, namespace, ALICE) == nobody
        assert await refusal(bob, namespace, ALICE) == nobody
        assert await refusal(bob, namespace, NOBODY) == nobody
    alice.abort()
    await dave_in.expect(presence_of(dave, "unavailable", f"{ALICE}/test"), "alice offline")
    for namespace in (DISCO_INFO, DISCO_ITEMS):
        assert await refusal(carol, namespace, ALICE) == await refusal(carol, namespace, NOBODY)


async def test_last_activity_refusals_cannot_tell_a_block_from_a_stranger(users: Harness) -> None:
    """bob is on alice's block list, carol is a stranger: jabber:iq:last at alice refuses both
    with the same error, the one an account that does not exist gets."""
    alice, _ = await online(users, "alice")
    alice.register_plugin("xep_0191")
    await alice.plugin["xep_0191"].block([BOB], timeout=TIMEOUT)
    bob, _ = await online(users, "bob")
    carol, _ = await online(users, "carol")
    nobody = await refusal(carol, LAST, NOBODY)
    assert await refusal(carol, LAST, ALICE) == nobody
    assert await refusal(bob, LAST, ALICE) == nobody


# Presence states in canonical form


async def test_state_with_spaces_is_forwarded_as_its_token(users: Harness) -> None:
    await link(users, "alice", "bob")
    alice, _ = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    alice.send_raw(f"<presence><state xmlns='{CHORUS_PRESENCE}'> dnd </state></presence>")
    seen = await bob_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/test" and p["show"] == "dnd", "alice's dnd"
    )
    assert [node.text for node in seen.xml.iter(STATE)] == ["dnd"]
    assert seen["status"] == "Do Not Disturb"
    alice.send_raw("<presence><show> away </show></presence>")
    seen = await bob_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/test" and p.xml.find(STATE).text == "away",
        "alice's away",
    )
    assert [node.text for node in seen.xml.iter("{jabber:client}show")] == ["away"]

    errors = Inbox(alice, "presence_error")
    alice.send_raw(f"<presence><state xmlns='{CHORUS_PRESENCE}'> nap </state></presence>")
    refused = await errors.expect(lambda p: p["type"] == "error", "the refusal")
    assert refused["error"]["condition"] == "bad-request"
    await sync(alice, bob)
    assert not [p for p in from_user(bob_in, ALICE) if "nap" in str(p)]


# "Away" while not logged in, withdrawn on return


def presences_of(client: Any, user: str) -> list[tuple[str, str]]:
    """(from, type) of every presence `client` receives from `user` from now on, in order."""
    seen: list[tuple[str, str]] = []

    def record(presence: Any) -> None:
        if presence["from"].bare == user:
            seen.append((str(presence["from"]), presence["type"]))

    client.add_event_handler("presence", record)
    return seen


async def test_not_logged_in_is_withdrawn_when_the_user_comes_back(users: Harness) -> None:
    await link(users, "alice", "bob")
    await link(users, "alice", "carol")
    alice, _ = await online(users, "alice")
    await visibility(alice, **{"away-when-offline": "true"})
    bob, bob_in = await online(users, "bob")
    alice.abort()
    await bob_in.expect(lambda p: str(p["from"]) == ALICE and p["type"] == "away", "Not logged in")

    seen = presences_of(bob, ALICE)
    alice, _ = await online(users, "alice", "back")
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/back"), "alice back")
    assert (ALICE, "unavailable") in seen
    assert seen.index((ALICE, "unavailable")) < seen.index((f"{ALICE}/back", "available"))

    # A contact arriving while alice is online sees only her real presence.
    carol = await users.login("carol")
    carol_seen = presences_of(carol, ALICE)
    carol_in = Inbox(carol)
    carol.send_presence()
    await carol_in.expect(presence_of(carol, "available", f"{ALICE}/back"), "alice's presence")
    await sync(carol)
    assert carol_seen == [(f"{ALICE}/back", "available")]

    # And while she is offline, only the automated one.
    alice.abort()
    await bob_in.expect(lambda p: str(p["from"]) == ALICE and p["type"] == "away", "away again")
    carol.abort()
    carol = await users.login("carol", resource="later")
    carol_seen = presences_of(carol, ALICE)
    carol_in = Inbox(carol)
    carol.send_presence()
    await carol_in.expect(lambda p: str(p["from"]) == ALICE, "alice's automated presence")
    await sync(carol)
    assert carol_seen == [(ALICE, "away")]


async def test_second_resource_withdraws_nothing(users: Harness) -> None:
    await link(users, "alice", "bob")
    alice, _ = await online(users, "alice", "one")
    await visibility(alice, **{"away-when-offline": "true"})
    bob, bob_in = await online(users, "bob")
    seen = presences_of(bob, ALICE)
    await online(users, "alice", "two")
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/two"), "the second resource")
    await sync(bob)
    assert seen == [(f"{ALICE}/two", "available")]


@pytest.mark.server_config(**PLAINTEXT, liveness={"resume_grace": 0.3})
async def test_not_logged_in_is_withdrawn_when_a_session_resumes(users: Harness) -> None:
    await link(users, "alice", "bob")
    raw = await raw_login(users, "alice")
    raw.send(
        "<iq type='set' id='auto'><visibility xmlns='urn:chorus:visibility:0' "
        "away-when-offline='true'/></iq><presence/>"
    )
    jid = (await raw.expect(rb"<presence[^>]*from=\"(alice@[^\"]+/[^\"]+)\""))[1].decode()
    raw.received = b""
    raw.send(f"<enable xmlns='{SM}' resume='true'/>")
    sm_id = (await raw.expect(rb"<enabled [^>]*id='([^']+)'"))[1].decode()
    bob, bob_in = await online(users, "bob")
    await bob_in.expect(presence_of(bob, "available", jid), "alice online")
    raw.writer.transport.abort()
    # resume_grace passes: contacts see alice offline, with the automated presence.
    await bob_in.expect(lambda p: str(p["from"]) == ALICE and p["type"] == "away", "away")

    seen = presences_of(bob, ALICE)
    again = await raw_login(users, "alice", bind=False)
    again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await again.expect(rf"<resumed xmlns='{SM}'")
    await bob_in.expect(presence_of(bob, "available", jid), "alice back")
    assert seen.index((ALICE, "unavailable")) < seen.index((jid, "available"))
