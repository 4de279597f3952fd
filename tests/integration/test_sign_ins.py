"""Staying signed in with tokens (XEP-0484 FAST over SASL2, XEP-0388), from a raw socket: the
features offered, a token issued after a SCRAM login, logins with it, rotation, expiry,
revocation (by the user, live), invalidation, and a wrong token refused and throttled as a bad
password is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from lxml import etree

from chorus_presence.admin import users as admin_users
from tests.integration.harness import DOMAIN, Harness, Peer, bind, ping
from tests.integration.harness.fast import (
    CLIENT_ID,
    SOFTWARE,
    password_login,
    secure,
    token_login,
)

ALICE = f"alice@{DOMAIN}"
SIGN_INS = "urn:chorus:sign-ins:0"
LIFETIME = 3600.0

STREAM_ERROR = "{http://etherx.jabber.org/streams}error"
# Failed logins in a row hold an address back for a moment; these tests fail on purpose.
NO_BACKOFF = {"auth_backoff_base": 0.001, "auth_backoff_max": 0.001}

pytestmark = pytest.mark.server_config(auth={"sign_in_lifetime": LIFETIME}, limits=NO_BACKOFF)


async def signed_in(harness: Harness, username: str = "alice", **options: object) -> str:
    """A password login that asks for a token; the token."""
    raw = await secure(harness)
    result = await password_login(raw, username, **options)  # type: ignore[arg-type]
    assert result.success and result.token, result
    raw.close()
    return result.token


async def with_token(harness: Harness, token: str, username: str = "alice", **options: object):
    raw = await secure(harness)
    result = await token_login(raw, username, token, **options)  # type: ignore[arg-type]
    return raw, result


async def peer_with_token(
    harness: Harness, token: str, resource: str, client_id: str = CLIENT_ID
) -> tuple[Peer, str]:
    """A bound raw client logged in with `token`; the peer and the token it was given next."""
    raw, result = await with_token(harness, token, client_id=client_id)
    assert result.success and result.token, result
    return Peer(raw, await bind(raw, resource)), result.token


async def test_sasl2_and_fast_are_offered_only_where_logging_in_is(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    clear = (await raw.expect(rb"<stream:features.*?</stream:features>"))[0]
    # TLS is required here: nothing to authenticate with before it.
    assert b"urn:xmpp:sasl:2" not in clear and b"mechanisms" not in clear
    raw.received = b""
    raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await raw.expect(b"<proceed")
    await raw.writer.start_tls(harness.client_ssl_context(), server_hostname=DOMAIN)
    raw.received = b""
    raw.open_stream()
    data = (await raw.expect(rb"<stream:features.*?</stream:features>"))[0]
    features = etree.fromstring(data)
    authentication = features.find("{urn:xmpp:sasl:2}authentication")
    assert authentication is not None
    assert [m.text for m in authentication.findall("{urn:xmpp:sasl:2}mechanism")] == [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "PLAIN",
    ]
    fast = authentication.find("{urn:xmpp:sasl:2}inline/{urn:xmpp:fast:0}fast")
    assert fast is not None
    assert [m.text for m in fast.findall("{urn:xmpp:fast:0}mechanism")] == ["HT-SHA-256-NONE"]
    # RFC 6120 SASL has no client to issue a token to: the token mechanism is not there.
    legacy = features.find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms")
    assert legacy is not None
    assert "HT-SHA-256-NONE" not in [m.text for m in legacy]
    raw.send(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='HT-SHA-256-NONE'>AA==</auth>"
    )
    await raw.expect(b"<invalid-mechanism/>")


async def test_a_password_login_gets_a_token_that_logs_in_once_rotated(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await secure(harness)
    first = await password_login(raw, "alice")
    assert first.success, first
    assert first.identity == ALICE
    assert first.token and len(first.token) >= 43  # 256 bits in base64
    expiry = datetime.strptime(first.expiry or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((expiry - datetime.now(UTC)).total_seconds() - LIFETIME) < 120
    # No restart: the authenticated stream's features follow the success, bind among them.
    assert b"urn:ietf:params:xml:ns:xmpp-bind" in first.features
    await bind(raw, "pw")
    await ping(raw)
    raw.close()

    # The token logs in, and the success carries the next one.
    raw, second = await with_token(harness, first.token)
    assert second.success and second.identity == ALICE, second
    assert second.token and second.token != first.token
    await bind(raw, "token")
    await ping(raw)
    raw.close()

    # Until the new token is used, the one before still logs in (its answer may have been
    # lost); once it is, every older token is refused.
    raw, again = await with_token(harness, first.token)
    assert again.success and again.token, again
    raw.close()
    _, stale = await with_token(harness, second.token)
    assert (stale.success, stale.condition) == (False, "not-authorized")
    raw, third = await with_token(harness, again.token)
    assert third.success, third
    raw.close()
    _, replayed = await with_token(harness, first.token)
    assert (replayed.success, replayed.condition) == (False, "not-authorized")


async def test_a_token_works_only_for_its_client_and_mechanism(harness: Harness) -> None:
    await harness.add_user("alice")
    await harness.add_user("bob")
    token = await signed_in(harness)
    _, other_client = await with_token(harness, token, client_id="another-browser")
    assert other_client.condition == "not-authorized"
    _, other_user = await with_token(harness, token, username="bob")
    assert other_user.condition == "not-authorized"
    # FAST without naming the client cannot find its token, and says the request is malformed.
    _, anonymous = await with_token(harness, token, client_id=None)
    assert anonymous.condition == "malformed-request"
    raw, right = await with_token(harness, token)
    assert right.success, right
    raw.close()


@pytest.mark.server_config(
    auth={"sign_in_lifetime": LIFETIME, "max_failures": 2},
    # Long enough that the second attempt is always held back.
    limits={"auth_backoff_base": 600.0, "auth_backoff_max": 600.0},
)
async def test_a_wrong_token_is_refused_and_throttled_as_a_bad_password(harness: Harness) -> None:
    await harness.add_user("alice")
    await harness.add_user("bob")
    bob_token = await signed_in(harness, "bob")

    # A bad password: not-authorized, then this address waits before trying alice again,
    # even with her right password.
    raw = await secure(harness)
    bad = await password_login(raw, "alice", "wrong password", request_token=False)
    assert (bad.success, bad.condition) == (False, "not-authorized")
    held = await password_login(raw, "alice", request_token=False)
    assert (held.success, held.condition) == (False, "temporary-auth-failure")
    raw.close()

    # A wrong token for bob: the same answer, and the same wait, even for his right token.
    raw = await secure(harness)
    wrong = await token_login(raw, "bob", "not-the-token")
    assert (wrong.success, wrong.condition) == (False, "not-authorized")
    held = await token_login(raw, "bob", bob_token)
    assert (held.success, held.condition) == (False, "temporary-auth-failure")
    # Failures count towards auth.max_failures like any other: the stream ends at 2.
    await raw.expect_stream_error("not-authorized")


@pytest.mark.server_config(auth={"sign_in_lifetime": 0.001}, limits=NO_BACKOFF)
async def test_an_expired_token_is_refused_as_expired(harness: Harness) -> None:
    await harness.add_user("alice")
    token = await signed_in(harness)
    _, expired = await with_token(harness, token)
    assert (expired.success, expired.condition) == (False, "credentials-expired")
    # Refused once, it is gone: the next try is an unknown token.
    _, again = await with_token(harness, token)
    assert again.condition == "not-authorized"
    raw = await secure(harness)
    fallback = await password_login(raw, "alice")
    assert fallback.success and fallback.token


async def test_the_user_lists_and_revokes_sign_ins_and_revoking_signs_out_live(
    harness: Harness,
) -> None:
    await harness.add_user("alice")
    await harness.add_user("bob")
    laptop = await signed_in(harness, device="Laptop")
    phone = await signed_in(harness, client_id="phone-1", device="Phone")
    peer, _next = await peer_with_token(harness, laptop, "laptop")

    listing = await peer.iq("get", f"<sign-ins xmlns='{SIGN_INS}'/>")
    entries = listing.findall(f"{{{SIGN_INS}}}sign-ins/{{{SIGN_INS}}}sign-in")
    assert [(e.get("label"), e.get("current")) for e in entries] == [
        (f"Laptop ({SOFTWARE})", "true"),
        (f"Phone ({SOFTWARE})", None),
    ]
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for entry in entries:
        for name in ("created", "last-used", "expires"):
            assert stamp.fullmatch(entry.get(name, "")), etree.tostring(entry)
    laptop_id, phone_id = (entry.get("id") for entry in entries)

    # The phone, signed in with its token, is signed out the moment the laptop revokes it.
    phone_raw, phone_login = await with_token(harness, phone, client_id="phone-1")
    assert phone_login.success, phone_login
    await bind(phone_raw, "phone")
    answer = await peer.iq("set", f"<revoke xmlns='{SIGN_INS}' id='{phone_id}'/>")
    assert answer.get("type") == "result", etree.tostring(answer)
    data = await phone_raw.expect_stream_error("not-authorized")
    assert f"The sign-in &apos;Phone ({SOFTWARE})&apos; of {ALICE} was revoked".encode() in data
    _, refused = await with_token(harness, phone, client_id="phone-1")
    assert refused.condition == "not-authorized"
    listing = await peer.iq("get", f"<sign-ins xmlns='{SIGN_INS}'/>")
    ids = [e.get("id") for e in listing.iter(f"{{{SIGN_INS}}}sign-in")]
    assert ids == [laptop_id]

    # What cannot be revoked says why; nobody else's sign-ins are reachable.
    missing = await peer.iq("set", f"<revoke xmlns='{SIGN_INS}' id='{phone_id}'/>")
    assert missing.findtext(".//{urn:ietf:params:xml:ns:xmpp-stanzas}text") == (
        f"No sign-in '{phone_id}' for {ALICE}"
    )
    foreign = await peer.iq("get", f"<sign-ins xmlns='{SIGN_INS}'/>", to=f"bob@{DOMAIN}")
    assert foreign.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden") is not None

    # Revoking its own sign-in answers first, then ends the stream (a sign-out).
    answer = await peer.iq("set", f"<revoke xmlns='{SIGN_INS}' id='{laptop_id}'/>")
    assert answer.get("type") == "result"
    await peer.close()
    [error] = [node for node in peer.take() if node.tag == STREAM_ERROR]
    assert error.find("{urn:ietf:params:xml:ns:xmpp-streams}not-authorized") is not None


async def test_invalidating_a_token_ends_its_sign_in(harness: Harness) -> None:
    await harness.add_user("alice")
    token = await signed_in(harness)
    raw, result = await with_token(harness, token, invalidate=True)
    # XEP-0484: the login succeeds, with no new token, and the token is gone.
    assert result.success and result.token is None, result
    raw.close()
    _, refused = await with_token(harness, token)
    assert refused.condition == "not-authorized"
    assert await harness.ctx.sign_ins.of_account("alice") == []


async def test_disabling_or_removing_an_account_ends_its_sign_ins(harness: Harness) -> None:
    await harness.add_user("alice")
    token = await signed_in(harness)
    await admin_users.disable(harness.ctx, "alice")
    _, disabled = await with_token(harness, token)
    assert disabled.condition == "not-authorized"
    await admin_users.enable(harness.ctx, "alice")
    _, enabled = await with_token(harness, token)
    assert enabled.condition == "not-authorized"

    token = await signed_in(harness)
    await admin_users.remove(harness.ctx, "alice")
    await harness.add_user("alice")
    _, recreated = await with_token(harness, token)
    assert recreated.condition == "not-authorized"


async def test_sasl2_without_a_token_is_a_plain_login(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await secure(harness)
    result = await password_login(raw, "alice", request_token=False, client_id=None)
    assert result.success and result.token is None, result
    await bind(raw, "plain")
    await ping(raw)
    assert await harness.ctx.sign_ins.of_account("alice") == []
    # The stream is authenticated: a second authenticate ends it.
    raw.send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>")
    await raw.expect_stream_error("policy-violation")


async def test_disco_lists_the_sign_ins_extension(harness: Harness) -> None:
    await harness.add_user("alice")
    token = await signed_in(harness)
    peer, _ = await peer_with_token(harness, token, "disco")
    info = await peer.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", DOMAIN)
    features = {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert SIGN_INS in features
    await peer.close()


async def test_a_resumed_session_is_under_the_sign_in_it_resumed_with(harness: Harness) -> None:
    await harness.add_user("alice")
    laptop = await signed_in(harness, device="Laptop")
    raw, login = await with_token(harness, laptop)
    assert login.success, login
    await bind(raw, "roaming")
    raw.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    sm_id = (await raw.expect(rb"<enabled [^>]*id='([^']+)'"))[1].decode()
    raw.writer.transport.abort()

    # The session comes back over a connection that logged in with another sign-in.
    phone = await signed_in(harness, client_id="phone-1", device="Phone")
    again, login = await with_token(harness, phone, client_id="phone-1")
    assert login.success, login
    again.send(f"<resume xmlns='urn:xmpp:sm:3' previd='{sm_id}' h='0'/>")
    await again.expect(b"<resumed ")
    ids = {item.label: item.id for item in await harness.ctx.sign_ins.of_account("alice")}

    await harness.ctx.sign_ins.revoke("alice", [ids[f"Laptop ({SOFTWARE})"]])
    await ping(again)
    await harness.ctx.sign_ins.revoke("alice", [ids[f"Phone ({SOFTWARE})"]])
    await again.expect_stream_error("not-authorized")
