"""`chorus-presence signin list|revoke` as an operator runs it: live through the admin socket
(a revoked client is disconnected at once) and on the database of a stopped server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import (
    DOMAIN,
    Harness,
    bind,
    config_of,
    fails,
    ok,
    start_server,
    write_config,
)
from tests.integration.harness.fast import SOFTWARE, password_login, secure, token_login

ALICE = f"alice@{DOMAIN}"

# Failed logins in a row hold an address back for a moment; these tests fail on purpose.
NO_BACKOFF = {"auth_backoff_base": 0.001, "auth_backoff_max": 0.001}

pytestmark = pytest.mark.server_config(admin={"socket": "admin.sock"}, limits=NO_BACKOFF)


async def signed_in(harness: Harness, client_id: str, device: str) -> str:
    raw = await secure(harness)
    result = await password_login(raw, "alice", client_id=client_id, device=device)
    assert result.success and result.token, result
    raw.close()
    return result.token


async def test_signin_list_and_revoke_are_live(harness: Harness) -> None:
    config = config_of(harness)
    await harness.add_user("alice")
    await harness.add_user("bob")
    desk = await signed_in(harness, "desk-id", "Desk")
    phone = await signed_in(harness, "phone-id", "Phone")

    listed = (await ok(config, "signin", "list", "alice", "--json")).json()
    assert listed["jid"] == ALICE
    entries = {entry["label"]: entry for entry in listed["sign_ins"]}
    assert set(entries) == {f"Desk ({SOFTWARE})", f"Phone ({SOFTWARE})"}
    desk_id = entries[f"Desk ({SOFTWARE})"]["id"]
    for key in ("created", "last_used", "expires"):
        assert entries[f"Desk ({SOFTWARE})"][key].endswith("Z")
    table = (await ok(config, "signin", "list", "alice")).out
    assert desk_id in table and f"Phone ({SOFTWARE})" in table
    assert "No sign-ins for bob@chorus.test" in (await ok(config, "signin", "list", "bob")).out

    # The desk is online with its token; revoking it disconnects it there and then.
    raw = await secure(harness)
    login = await token_login(raw, "alice", desk, client_id="desk-id")
    assert login.success, login
    await bind(raw, "desk")
    revoked = await ok(config, "signin", "revoke", "alice", desk_id)
    assert revoked.out.strip() == f"Revoked the sign-in {desk_id} of {ALICE}: Desk ({SOFTWARE})"
    await raw.expect_stream_error("not-authorized")
    raw = await secure(harness)
    assert (await token_login(raw, "alice", desk, client_id="desk-id")).condition == (
        "not-authorized"
    )

    missing = f"No sign-in '{desk_id}' for {ALICE}"
    await fails(config, 1, "signin", "revoke", "alice", desk_id, needle=missing)
    await fails(config, 1, "signin", "list", "carol", needle=f"No such user carol@{DOMAIN}")
    usage = "One of the arguments ID --all is required"
    await fails(config, 2, "signin", "revoke", "alice", needle=usage)
    every = (await ok(config, "signin", "revoke", "alice", "--all", "--json")).json()
    assert [entry["label"] for entry in every["revoked"]] == [f"Phone ({SOFTWARE})"]
    raw = await secure(harness)
    assert (await token_login(raw, "alice", phone, client_id="phone-id")).condition == (
        "not-authorized"
    )


async def test_signin_commands_work_on_a_stopped_servers_database(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(tmp_path, tls_files, admin={"socket": "admin.sock"}, limits=NO_BACKOFF)
    harness = await start_server(config, tls_files[0])
    await harness.add_user("alice")
    kept = await signed_in(harness, "kept-id", "Kept")
    dropped = await signed_in(harness, "dropped-id", "Dropped")
    await harness.close()

    listed = (await ok(config, "signin", "list", "alice", "--json")).json()["sign_ins"]
    dropped_id = next(e["id"] for e in listed if e["label"] == f"Dropped ({SOFTWARE})")
    await ok(config, "signin", "revoke", "alice", dropped_id)
    left = (await ok(config, "signin", "list", "alice", "--json")).json()["sign_ins"]
    assert [entry["label"] for entry in left] == [f"Kept ({SOFTWARE})"]

    restarted = await start_server(config, tls_files[0])
    try:
        raw = await secure(restarted)
        assert (await token_login(raw, "alice", dropped, client_id="dropped-id")).condition == (
            "not-authorized"
        )
        raw = await secure(restarted)
        assert (await token_login(raw, "alice", kept, client_id="kept-id")).success
    finally:
        await restarted.close()
