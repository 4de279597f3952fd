"""The limits that hold per address or per account hold across the cluster: failed logins
alternating between node-a and node-b are throttled at the count one node would throttle them
at (per address, and the account's ceiling over many addresses), and so are subscription
requests sent by one account's sessions on both nodes. Clients on other loopback addresses
(127.0.0.2, ...) stand for other machines. The plain `session list` of a cluster says which
node holds each session.
"""

from __future__ import annotations

import re

from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    ClusterNode,
    RawClient,
    config_of,
    error_condition,
    features,
    ok,
    ping,
    plain_token,
    raw_session,
    stanzas,
)
from tests.integration.harness.cluster import ClusterFactory

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
PLAINTEXT = {"tls": {"required": False}}
OPEN_DOORS = {"connections_per_address": 500, "connection_rate": 10000.0}


async def attempt(node: ClusterNode, address: str, username: str, password: str = PASSWORD) -> str:
    """One PLAIN login on a new connection to `node` from `address`: 'success' or the
    failure condition."""
    raw: RawClient = await node.raw(source=address)
    await features(raw)
    token = plain_token(username, password)
    raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
    match = await raw.expect(rb"<success|<failure[^>]*><([a-z-]+)/>")
    raw.close()
    return "success" if match[1] is None else match[1].decode()


async def test_failed_logins_from_one_address_add_up_across_nodes(
    cluster_of: ClusterFactory,
) -> None:
    cluster = await cluster_of(
        2, **PLAINTEXT, auth={"max_failures": 10}, limits={**OPEN_DOORS, "auth_failures": 3}
    )
    a, b = cluster
    await cluster.add_users("alice")
    # Three accounts, so that only the address adds up to the limit; one node would count
    # all three, and so must the two.
    outcomes = [
        await attempt((a, b)[number % 2], "127.0.0.2", f"nobody{number}", "guess")
        for number in range(3)
    ]
    assert outcomes == ["not-authorized"] * 3
    # Now even the right password is refused from there, on either node.
    assert await attempt(b, "127.0.0.2", "alice") == "temporary-auth-failure"
    assert await attempt(a, "127.0.0.2", "alice") == "temporary-auth-failure"
    # From another address the account is fine.
    assert await attempt(b, "127.0.0.3", "alice") == "success"


async def test_the_account_ceiling_adds_up_across_nodes(cluster_of: ClusterFactory) -> None:
    cluster = await cluster_of(
        2,
        **PLAINTEXT,
        auth={"max_failures": 10},
        limits={**OPEN_DOORS, "auth_failures": 3, "auth_account_failures": 4},
    )
    a, b = cluster
    await cluster.add_users("alice", "bob")
    for number in range(4):
        address = f"127.0.0.{number + 2}"
        assert await attempt((a, b)[number % 2], address, "alice", "guess") == "not-authorized"
    # The fifth try, from a fresh address and with the right password, is refused on both.
    assert await attempt(a, "127.0.0.20", "alice") == "temporary-auth-failure"
    assert await attempt(b, "127.0.0.21", "alice") == "temporary-auth-failure"
    assert await attempt(b, "127.0.0.20", "bob") == "success"


async def test_subscription_requests_share_one_allowance_across_nodes(
    cluster_of: ClusterFactory,
) -> None:
    cluster = await cluster_of(2, **PLAINTEXT, limits={"subscriptions_per_minute": 3})
    a, b = cluster
    await cluster.add_users("alice", "bob", "carol", "dave", "erin")
    on_a, _jid = await raw_session(a, "alice", "one")
    on_b, _jid = await raw_session(b, "alice", "two")
    # Alternating nodes: a node alone would let two through of each, four in all.
    for number, contact in enumerate(("bob", "carol", "dave", "erin")):
        sender = (on_a, on_b)[number % 2]
        sender.send(f"<presence type='subscribe' id='s{number}' to='{contact}@{DOMAIN}'/>")
        await ping(sender, f"sent{number}")
    errors = stanzas(on_a.received, "presence") + stanzas(on_b.received, "presence")
    refused = {s.get("id"): error_condition(s) for s in errors if s.get("type") == "error"}
    assert refused == {"s3": ("wait", "policy-violation")}
    # Another account has its own allowance.
    bob, _jid = await raw_session(b, "bob")
    bob.send(f"<presence type='subscribe' id='b1' to='erin@{DOMAIN}'/>")
    await ping(bob)
    assert b'type="error"' not in bob.received


async def test_the_session_list_of_a_cluster_names_each_node(cluster_of: ClusterFactory) -> None:
    cluster = await cluster_of(2, **PLAINTEXT)
    a, b = cluster
    await cluster.add_users("alice", "bob")
    await raw_session(a, "alice", "desk")
    await raw_session(b, "bob", "phone")
    for node in (a, b):
        lines = (await ok(config_of(node), "session", "list")).out.splitlines()
        rows = [re.split(r"\s{2,}", line.strip()) for line in lines if line.strip()]
        header = rows[0]
        assert header[-1] == "Node", lines
        assert [(row[0], row[-1]) for row in rows[1:3]] == [
            (f"alice@{DOMAIN}/desk", "node-a"),
            (f"bob@{DOMAIN}/phone", "node-b"),
        ]
