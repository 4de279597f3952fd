"""Admin commands on accounts: add, remove, passwords, disabling, listing and export.

Removing an account goes through the one removal every path shares; disabling one ends its
sessions at once.
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
        raise AdminError(f"user {jid} already exists") from None
    except InvalidUsername as error:
        raise AdminError(f"bad username: {error}") from None
    except InvalidPassword as error:
        raise AdminError(f"bad password: {error}") from None
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
        raise AdminError(f"bad password: {error}") from None
    if not changed:
        raise AdminError(f"no such user: {jid}")
    return _entry(jid)


async def remove(ctx: Components, user: str) -> dict[str, str]:
    jid = user_jid(ctx, user)
    assert jid.local is not None
    if not await ctx.accounts.remove(jid.local):
        raise AdminError(f"no such user: {jid}")
    return _entry(jid)


async def disable(ctx: Components, user: str) -> dict[str, str]:
    jid = await _set_disabled(ctx, user, True)
    _end_sessions(ctx, jid, "The account was disabled")
    return _entry(jid)


async def enable(ctx: Components, user: str) -> dict[str, str]:
    return _entry(await _set_disabled(ctx, user, False))


async def list_(ctx: Components) -> list[dict[str, str]]:
    return [_entry(JID(name, ctx.domain)) for name in await ctx.accounts.usernames()]


async def export(ctx: Components) -> list[dict[str, object]]:
    """Usernames and whether each account is disabled; never credentials."""
    accounts = await ctx.accounts.list_with_status()
    return [{"username": name, "disabled": disabled} for name, disabled in accounts]


async def _set_disabled(ctx: Components, user: str, disabled: bool) -> JID:
    jid = user_jid(ctx, user)
    assert jid.local is not None
    if not await ctx.accounts.set_disabled(jid.local, disabled):
        raise AdminError(f"no such user: {jid}")
    return jid


def _end_sessions(ctx: Components, jid: JID, text: str) -> None:
    # not-authorized, as for an account removed in-band: the client's credentials no longer
    # log it in, so it should not try again.
    for session in ctx.sessions.of_account(jid):
        session.close(StreamError("not-authorized", text))


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
