"""Display names over vCard4 (XEP-0292, the IQ form) with real clients: a user sets their own
name and every account of the server reads it; names that cannot be stored are refused with
bad-request saying why; only the owner changes a vCard; someone the owner blocks gets exactly
the answer a nonexistent account gets; the name outlives a restart and goes with its account;
and disco#info at an account lists urn:xmpp:vcard4.
"""

from __future__ import annotations

from typing import Any

import pytest
import slixmpp
from lxml import etree
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.integration.harness import DOMAIN, Harness
from tests.integration.harness.constants import TIMEOUT

VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
NOBODY = f"nobody@{DOMAIN}"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


def vcard(fn: str | None = None, nickname: str | None = None) -> ET.Element:
    card = ET.Element(f"{{{VCARD4}}}vcard")
    for tag, value in (("fn", fn), ("nickname", nickname)):
        if value is not None:
            property_ = ET.SubElement(card, f"{{{VCARD4}}}{tag}")
            ET.SubElement(property_, f"{{{VCARD4}}}text").text = value
    return card


async def set_vcard(client: slixmpp.ClientXMPP, card: ET.Element, to: str | None = None) -> Any:
    iq = client.make_iq_set(ito=to)
    iq.append(card)
    return await iq.send(timeout=TIMEOUT)


async def name_of(client: slixmpp.ClientXMPP, jid: str) -> str | None:
    iq = client.make_iq_get(ito=jid)
    iq.append(ET.Element(f"{{{VCARD4}}}vcard"))
    result = await iq.send(timeout=TIMEOUT)
    card = result.xml.find(f"{{{VCARD4}}}vcard")
    assert card is not None
    return card.findtext(f"{{{VCARD4}}}fn/{{{VCARD4}}}text")


async def refusal(client: slixmpp.ClientXMPP, jid: str) -> tuple[str, bytes]:
    """The error a vCard get at `jid` is answered with: its condition and its element, with
    the request's own addresses and id taken out."""
    with pytest.raises(IqError) as caught:
        await name_of(client, jid)
    error = etree.fromstring(ET.tostring(caught.value.iq.xml.find("{jabber:client}error")))
    return caught.value.condition, etree.tostring(error, method="c14n")


async def test_a_name_set_by_its_owner_is_read_by_every_account(users: Harness) -> None:
    alice = await users.login("alice")
    bob = await users.login("bob")
    assert await name_of(bob, ALICE) is None
    await set_vcard(alice, vcard(fn="  Alice Liddell "))
    assert await name_of(alice, ALICE) == "Alice Liddell"
    # Bob has no subscription to Alice: names are a company directory, not presence.
    assert await name_of(bob, ALICE) == "Alice Liddell"
    # A get with no 'to' is the user's own vCard.
    iq = alice.make_iq_get()
    iq.append(ET.Element(f"{{{VCARD4}}}vcard"))
    result = await iq.send(timeout=TIMEOUT)
    assert result.xml.findtext(f".//{{{VCARD4}}}text") == "Alice Liddell"


async def test_a_nickname_alone_is_the_name_and_an_empty_vcard_clears_it(
    users: Harness,
) -> None:
    alice = await users.login("alice")
    await set_vcard(alice, vcard(nickname="Ally"), to=ALICE)
    assert await name_of(alice, ALICE) == "Ally"
    await set_vcard(alice, vcard(fn="Alice Liddell", nickname="Ally"))
    assert await name_of(alice, ALICE) == "Alice Liddell"
    await set_vcard(alice, vcard())
    assert await name_of(alice, ALICE) is None


@pytest.mark.parametrize(
    "name,text",
    [
        ("   ", "The display name is empty"),
        ("x" * 65, "The display name is longer than 64 characters"),
        # XML carries no other C0 control; the C1 ones pass through it.
        ("Alice\nLiddell", "The display name contains a control character"),
        ("Alice\u0085Liddell", "The display name contains a control character"),
    ],
)
async def test_names_that_cannot_be_stored_are_bad_requests(
    users: Harness, name: str, text: str
) -> None:
    alice = await users.login("alice")
    await set_vcard(alice, vcard(fn="Alice"))
    with pytest.raises(IqError) as caught:
        await set_vcard(alice, vcard(fn=name))
    assert (caught.value.condition, caught.value.text) == ("bad-request", text)
    assert await name_of(alice, ALICE) == "Alice"


async def test_the_longest_name_is_kept_whole(users: Harness) -> None:
    alice = await users.login("alice")
    await set_vcard(alice, vcard(fn="é" * 64))
    assert await name_of(alice, ALICE) == "é" * 64


async def test_only_the_owner_changes_a_vcard(users: Harness) -> None:
    bob = await users.login("bob")
    with pytest.raises(IqError) as caught:
        await set_vcard(bob, vcard(fn="Not Alice"), to=ALICE)
    assert caught.value.condition == "forbidden"
    assert await users.ctx.repositories.display_names.get("alice") is None


async def test_a_blocked_user_is_answered_as_for_a_nonexistent_account(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0191",))
    carol = await users.login("carol", plugins=("xep_0191",))
    await set_vcard(alice, vcard(fn="Alice Liddell"))
    await alice.plugin["xep_0191"].block([CAROL], timeout=TIMEOUT)
    nonexistent = await refusal(carol, NOBODY)
    assert nonexistent[0] == "forbidden"
    assert await refusal(carol, ALICE) == nonexistent
    # Carol's own block works the same way round.
    await carol.plugin["xep_0191"].block([BOB], timeout=TIMEOUT)
    bob = await users.login("bob")
    await set_vcard(bob, vcard(fn="Bob"))
    assert await refusal(carol, BOB) == nonexistent
    # Unblocked, the name is there again.
    await alice.plugin["xep_0191"].unblock([CAROL], timeout=TIMEOUT)
    assert await name_of(carol, ALICE) == "Alice Liddell"


async def test_the_name_outlives_a_restart_and_goes_with_its_account(users: Harness) -> None:
    alice = await users.login("alice")
    await set_vcard(alice, vcard(fn="Alice Liddell"))
    await users.restart()
    bob = await users.login("bob")
    assert await name_of(bob, ALICE) == "Alice Liddell"
    assert await users.ctx.accounts.remove("alice")
    await users.add_user("alice")
    assert await name_of(bob, ALICE) is None


async def test_disco_at_an_account_lists_vcard4(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0030",))
    info = await alice.plugin["xep_0030"].get_info(ALICE, timeout=TIMEOUT)
    assert "urn:xmpp:vcard4" in info["disco_info"]["features"]
    server = await alice.plugin["xep_0030"].get_info(DOMAIN, timeout=TIMEOUT)
    assert "urn:xmpp:vcard4" not in server["disco_info"]["features"]
