"""Admin commands on accounts: add, remove, passwords, display names, disabling, listing and
export.

Removing an account goes through the one removal every path shares; disabling one ends its
sessions at once. Disabling a disabled account (or enabling an enabled one) changes nothing and
succeeds, saying so in `changed`: a script that makes sure of a state can run again.
"""

from __future__ import annotations

from chorus_presence.admin.common import AdminError, Command, user_jid
from chorus_presence.server.components import Components
from chorus_presence.services.accounts import AccountExists, InvalidPassword, InvalidUsername
from chorus_presence.services.display_names import InvalidName, checked_name
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID


async def add(
    ctx: Components, user: str, password: str, name: str | None = None
) -> dict[str, object]:
    """A new account, with its display name when `name` is given."""
    jid = user_jid(ctx, user)
    assert jid.local is not None
    # Checked first: a name that cannot be stored leaves no account behind.
    display_name = None if name is None else _checked(name)
    try:
        username = await ctx.accounts.create(jid.local, password)
    except AccountExists:
        raise AdminError(f"User {jid} already exists") from None
    except InvalidUsername as error:
        raise AdminError(f"{user!r} is not a valid username: {error}") from None
    except InvalidPassword as error:
        raise AdminError(_capitalised(str(error))) from None
    if display_name is not None and not await ctx.repositories.display_names.set(
        username, display_name
    ):
        raise AdminError(f"No such user {jid}")
    return {**_entry(jid), "name": display_name}


async def name_(
    ctx: Components, user: str, name: str | None = None, clear: bool = False
) -> dict[str, object]:
    """The account's display name: set to `name`, cleared, or, with neither, only read."""
    jid = user_jid(ctx, user)
    username = jid.local
    assert username is not None
    names = ctx.repositories.display_names
    if name is not None and clear:
        raise AdminError("Give a name or clear it, not both")
    if not await ctx.accounts.exists(username):
        raise AdminError(f"No such user {jid}")
    if clear:
        await names.clear(username)
        return {**_entry(jid), "name": None}
    if name is None:
        return {**_entry(jid), "name": await names.get(username)}
    display_name = _checked(name)
    if not await names.set(username, display_name):
        raise AdminError(f"No such user {jid}")
    return {**_entry(jid), "name": display_name}


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
    """Every account, disabled ones too, each with its state and display name."""
    accounts = await ctx.accounts.list_with_status()
    names = await ctx.repositories.display_names.all()
    return [
        {**_entry(JID(username, ctx.domain)), "disabled": disabled, "name": names.get(username)}
        for username, disabled in accounts
    ]


async def export(ctx: Components) -> list[dict[str, object]]:
    """Usernames, whether each account is disabled and its display name; never credentials."""
    accounts = await ctx.accounts.list_with_status()
    names = await ctx.repositories.display_names.all()
    return [
        {"username": username, "disabled": disabled, "name": names.get(username)}
        for username, disabled in accounts
    ]


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


def _checked(name: str) -> str:
    try:
        return checked_name(name)
    except InvalidName as error:
        raise AdminError(str(error)) from None


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
    "user.name": Command(name_),
    "user.remove": Command(remove),
    "user.disable": Command(disable),
    "user.enable": Command(enable),
    "user.list": Command(list_),
    "user.export": Command(export),
}
