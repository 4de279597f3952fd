"""Admin commands on sign-ins, the clients that stay logged in with tokens (XEP-0484): listing
a user's, and revoking one or all of them. On a running server a revoked sign-in's streams end
at once; on a stopped one its tokens are gone when it starts."""

from __future__ import annotations

from chorus_presence.admin.common import AdminError, Command, existing_user
from chorus_presence.server.components import Components
from chorus_presence.services.sign_ins import timestamp
from chorus_presence.storage.sign_ins import SignIn


async def list_(ctx: Components, user: str) -> dict[str, object]:
    """The user's sign-ins with a token left, most recently used first."""
    jid = await existing_user(ctx, user)
    assert jid.local is not None
    sign_ins = await ctx.sign_ins.of_account(jid.local)
    return {
        "username": jid.local,
        "jid": str(jid),
        "sign_ins": [_entry(sign_in) for sign_in in sign_ins],
    }


async def revoke(
    ctx: Components, user: str, sign_in: str | None = None, every: bool = False
) -> dict[str, object]:
    """Revoke the sign-in named `sign_in`, or with `every` all of the user's."""
    jid = await existing_user(ctx, user)
    assert jid.local is not None
    if every == (sign_in is not None):
        raise AdminError("Name one sign-in to revoke, or revoke them all")
    revoked = await ctx.sign_ins.revoke(jid.local, None if every else [str(sign_in)])
    if not every and not revoked:
        raise AdminError(f"No sign-in {sign_in!r} for {jid}")
    return {
        "username": jid.local,
        "jid": str(jid),
        "revoked": [_entry(item) for item in revoked],
    }


def _entry(sign_in: SignIn) -> dict[str, str]:
    return {
        "id": sign_in.id,
        "label": sign_in.label,
        "created": timestamp(sign_in.created_at),
        "last_used": timestamp(sign_in.last_used_at),
        "expires": timestamp(sign_in.expires_at),
    }


COMMANDS = {
    "signin.list": Command(list_),
    "signin.revoke": Command(revoke),
}
