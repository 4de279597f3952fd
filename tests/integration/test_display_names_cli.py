"""Display names from the admin command line, as an operator runs it: `user add --name`,
`user name USER [NAME]` and `--clear`, the name column of `user list`, and the CSV import's
name column written back by the export; live through the admin socket, and on the database of
a stopped server. What the admin sets is what clients read over vCard4.
"""

from __future__ import annotations

from pathlib import Path

import slixmpp
from slixmpp.xmlstream import ET

from tests.integration.harness import DOMAIN, TIMEOUT, Harness, cli, config_of, fails, ok

VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


async def vcard_name(client: slixmpp.ClientXMPP, jid: str) -> str | None:
    iq = client.make_iq_get(ito=jid)
    iq.append(ET.Element(f"{{{VCARD4}}}vcard"))
    result = await iq.send(timeout=TIMEOUT)
    return result.xml.findtext(f"{{{VCARD4}}}vcard/{{{VCARD4}}}fn/{{{VCARD4}}}text")


async def test_names_set_by_the_admin_are_live(harness: Harness) -> None:
    config = config_of(harness)
    add = ("user", "add", "alice", "--name", " Alice Liddell ", "--password-stdin", "--json")
    added = await ok(config, *add, stdin="pw\n")
    assert added.json() == {"username": "alice", "jid": ALICE, "name": "Alice Liddell"}
    await ok(config, "user", "add", "bob", "--password-stdin", stdin="pw\n")
    bob = await harness.login("bob", "pw")
    assert await vcard_name(bob, ALICE) == "Alice Liddell"
    assert (await ok(config, "user", "name", "alice")).out == "Alice Liddell\n"
    assert (await ok(config, "user", "name", "bob")).out == f"{BOB} has no display name\n"

    changed = await ok(config, "user", "name", "alice", "Alice P. Liddell")
    assert changed.out == f"{ALICE} is now shown as Alice P. Liddell\n"
    assert await vcard_name(bob, ALICE) == "Alice P. Liddell"
    assert (await ok(config, "user", "list", "--json")).json() == [
        {"username": "alice", "jid": ALICE, "disabled": False, "name": "Alice P. Liddell"},
        {"username": "bob", "jid": BOB, "disabled": False, "name": None},
    ]
    table = (await ok(config, "user", "list")).out
    assert "Name" in table and "Alice P. Liddell" in table

    cleared = await ok(config, "user", "name", f"alice@{DOMAIN}", "--clear", "--json")
    assert cleared.json() == {"username": "alice", "jid": ALICE, "name": None}
    assert await vcard_name(bob, ALICE) is None


async def test_names_that_cannot_be_stored_are_one_line_errors(harness: Harness) -> None:
    config = config_of(harness)
    await harness.add_user("alice")
    await fails(config, 1, "user", "name", "alice", "   ", needle="The display name is empty")
    for name, error in (
        ("x" * 65, "The display name is longer than 64 characters"),
        ("Alice\tLiddell", "The display name contains a control character"),
    ):
        await fails(config, 1, "user", "name", "alice", name, needle=error)
    await fails(
        config, 1, "user", "name", "nobody", "Nobody", needle=f"No such user nobody@{DOMAIN}"
    )
    await fails(config, 2, "user", "name", "alice", "Alice", "--clear", needle="not allowed")
    # Refused before the password is read, and no account is left behind.
    refused = await cli(config, "user", "add", "bob", "--name", "", "--password-stdin")
    assert refused.code == 1 and "The display name is empty" in refused.err, refused
    assert not await harness.ctx.accounts.exists("bob")
    assert await harness.ctx.repositories.display_names.all() == {}


async def test_the_csv_name_column_is_imported_and_exported(
    harness: Harness, tmp_path: Path
) -> None:
    config = config_of(harness)
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "username,password,name\n"
        'alice,pw1,"Liddell, Alice"\n'
        "bob,pw2,\n"
        "carol,pw3\n"
        f"dave,pw4,{'x' * 65}\n"
        "erin,pw5,  Erin  \n"
    )
    run = await cli(config, "user", "import", str(csv_file), "--json")
    assert run.code == 1, run
    assert run.json() == {
        "imported": 4,
        "failed": [{"line": 5, "error": "The display name is longer than 64 characters"}],
    }
    assert not await harness.ctx.accounts.exists("dave")
    exported = (await ok(config, "user", "export")).out
    assert exported == (
        'username,disabled,name\nalice,false,"Liddell, Alice"\nbob,false,\ncarol,false,\n'
        "erin,false,Erin\n"
    )
    assert (await ok(config, "user", "export", "--json")).json()[0] == {
        "username": "alice",
        "disabled": False,
        "name": "Liddell, Alice",
    }


async def test_names_are_set_on_a_stopped_servers_database(harness: Harness) -> None:
    config = config_of(harness)
    await harness.add_user("alice")
    await harness.add_user("bob")

    async def while_stopped() -> None:
        await ok(config, "user", "name", "alice", "Alice Liddell")
        assert (await ok(config, "user", "name", "alice")).out == "Alice Liddell\n"

    await harness.restart(while_stopped=while_stopped)
    bob = await harness.login("bob")
    assert await vcard_name(bob, ALICE) == "Alice Liddell"
