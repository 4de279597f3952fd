"""Admin commands on accounts: add, remove, passwords, disabling, listing and export.

Removing an account goes through the one removal every path shares; disabling one ends its
sessions at once. Disabling a disabled account (or enabling an enabled one) changes nothing and
succeeds, saying so in `changed`: a script that makes sure of a state can run again.
"""

from __future__ import annotations

from chorus_presence.admin.common import AdminError, Command, user_jid
from chorus_presence.server.components import Components
from chorus_presence.services.accounts import AccountExists, InvalidPassword, InvalidUsername
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID


async def add(ctx: Components, user: str, password: str) -> dict[str, str]:
    jid = user_jid(ctx, user)
    assert jid.local is not None
    try:
        await ctx.accounts.create(jid.local, password)
    except AccountExists:
        raise AdminError(f"User {jid} already exists") from None
    except InvalidUsername as error:
        raise AdminError(f"{user!r} is not a valid username: {error}") from None
    except InvalidPassword as error:
        raise AdminError(_capitalised(str(error))) from None
    return _entry(jid)


async def lookup(ctx: Components, user: str) -> dict[str, object]:
    """The account USER names, and whether it exists."""
    jid = user_jid(ctx, user)
    assert jid.local is not None
    return {**_entry(jid), "exists": await ctx.accounts.exists(jid.local)}


async def passwd(ctx: Components, user: str, password: str) -> dict[str, str]:
    jid = user_jid(ctx, user)
    assert jid.local is not None
    try:
        changed = await ctx.accounts.change_password(jid.local, password)
    except InvalidPassword as error:
        raise AdminError(_capitalised(str(error))) from None
    if not changed:
        raise AdminError(f"No such user {jid}")
    return _entry(jid)


async def remove(ctx: Components, user: str) -> dict[str, str]:
    jid = user_jid(ctx, user)
    assert jid.local is not None
    if not await ctx.accounts.remove(jid.local):
        raise AdminError(f"No such user {jid}")
    return _entry(jid)


async def disable(ctx: Components, user: str) -> dict[str, object]:
    jid, changed = await _set_disabled(ctx, user, True)
    _end_sessions(ctx, jid, "The account was disabled")
    return {**_entry(jid), "disabled": True, "changed": changed}


async def enable(ctx: Components, user: str) -> dict[str, object]:
    jid, changed = await _set_disabled(ctx, user, False)
    return {**_entry(jid), "disabled": False, "changed": changed}


async def list_(ctx: Components) -> list[dict[str, object]]:
    """Every account, disabled ones too, each with its state."""
    accounts = await ctx.accounts.list_with_status()
    return [{**_entry(JID(name, ctx.domain)), "disabled": disabled} for name, disabled in accounts]


async def export(ctx: Components) -> list[dict[str, object]]:
    """Usernames and whether each account is disabled; never credentials."""
    accounts = await ctx.accounts.list_with_status()
    return [{"username": name, "disabled": disabled} for name, disabled in accounts]


async def _set_disabled(ctx: Components, user: str, disabled: bool) -> tuple[JID, bool]:
    """The account's JID, and whether it changed."""
    jid = user_jid(ctx, user)
    assert jid.local is not None
    before = await ctx.accounts.is_disabled(jid.local)
    if before is None:
        raise AdminError(f"No such user {jid}")
    changed = before != disabled
    if changed and not await ctx.accounts.set_disabled(jid.local, disabled):
        # Removed since it was read.
        raise AdminError(f"No such user {jid}")
    return jid, changed


def _end_sessions(ctx: Components, jid: JID, text: str) -> None:
    # not-authorized, as for an account removed in-band: the client's credentials no longer
    # log it in, so it should not try again.
    for session in ctx.sessions.of_account(jid):
        session.close(StreamError("not-authorized", text))


def _capitalised(text: str) -> str:
    # The password checks say "password is empty"; the operator reads "Password is empty".
    return text[:1].upper() + text[1:]


def _entry(jid: JID) -> dict[str, str]:
    assert jid.local is not None
    return {"username": jid.local, "jid": str(jid)}


COMMANDS = {
    "user.add": Command(add),
    "user.lookup": Command(lookup),
    "user.passwd": Command(passwd),
    "user.remove": Command(remove),
    "user.disable": Command(disable),
    "user.enable": Command(enable),
    "user.list": Command(list_),
    "user.export": Command(export),
}
