"""What one node says to another: an envelope per pub/sub message, naming the sender, its boot
(each start of a node is a new incarnation) and the version of this protocol it speaks, and
carrying items in the order they were put. JSON; an item is a list whose first element is its
kind.

The version lets a cluster be upgraded node by node. Within one version, a newer node may add
kinds and trailing fields (to items and entries), and an older node ignores what it does not
know: an unknown kind is skipped (logged once per kind), extra fields are not read. A change
that an older node would misread raises `VERSION`, and a node drops, loudly, every message of
a version it does not speak (`WireError`); envelopes without a version are version 1.

Kinds, and what follows the kind:

| kind | fields | meaning |
|---|---|---|
| `send` | full JID, data | a stanza for a session the receiver holds |
| `presence-to` | full JID, data, sender | a presence update for it (condensed while inactive) |
| `close` | full JID, condition or null, text or null | end that session's stream |
| `bound` | entry | the sender bound a session |
| `presence` | entry | the presence of a session the sender holds changed |
| `unbound` | full JID, session id | that session ended |
| `changed` | {"rosters", "blocks", "settings": [usernames], "requests"} | committed changes |
| `removed` | removed account (`removed_to_wire`) | the sender removed an account |
| `revoked` | username, [[sign-in id, label], ...] | the sender revoked those sign-ins |
| `hello` | [entry, ...] | the sender (re)joined; every session it holds; answered with `sync` |
| `sync` | [entry, ...] | every session the sender holds |
| `bye` | | the sender stops |
| `ask` | id, query | a question (`session.list`, `stats`), answered with `answer` |
| `answer` | id, result or null, error or null | |

An entry (`Entry`) is [full JID, session id, presence stanza or null, priority, state]. The
`requests` of `changed` are the subscription requests the commit stored, each [owner, contact,
status or null, [the full JIDs on other nodes the sender delivered it to]] (`requests`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lxml import etree

from chorus_presence.storage.accounts import RemovedAccount
from chorus_presence.storage.rosters import RosterItem
from chorus_presence.xmpp.stanza import Element, serialize

SEND = "send"
PRESENCE_TO = "presence-to"
CLOSE = "close"
BOUND = "bound"
PRESENCE = "presence"
UNBOUND = "unbound"
CHANGED = "changed"
REMOVED = "removed"
REVOKED = "revoked"
HELLO = "hello"
SYNC = "sync"
BYE = "bye"
ASK = "ask"
ANSWER = "answer"

# The protocol this node speaks, and the oldest whose messages it still reads.
VERSION = 1
OLDEST_READ = 1

Item = list[Any]

# Stanzas from another node were parsed and checked by that node already; still, nothing in
# them is resolved or fetched.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class WireError(ValueError):
    """A message that is not what a node of this cluster sends."""


class UnknownKind(WireError):
    """An item of a kind this node does not know: a newer node's, skipped."""


@dataclass(frozen=True, slots=True)
class Envelope:
    node: str
    boot: str
    items: list[Item]
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class Entry:
    """A session as the directory and the announcements carry it."""

    jid: str
    sid: str
    stanza: str | None = None
    priority: int = 0
    state: str = "offline"

    def to_wire(self) -> Item:
        return [self.jid, self.sid, self.stanza, self.priority, self.state]

    @classmethod
    def from_wire(cls, fields: Any) -> Entry:
        try:
            jid, sid, stanza, priority, state = fields[:5]
        except (TypeError, ValueError) as exc:
            raise WireError(f"not a directory entry: {fields!r}") from exc
        if not (isinstance(jid, str) and isinstance(sid, str) and isinstance(priority, int)):
            raise WireError(f"not a directory entry: {fields!r}")
        return cls(jid, sid, stanza, priority, str(state))

    def presence(self) -> Element | None:
        return parse_stanza(self.stanza) if self.stanza is not None else None


def encode(node: str, boot: str, items: list[Item]) -> bytes:
    message = {"v": VERSION, "n": node, "b": boot, "i": items}
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> Envelope:
    try:
        message = json.loads(data)
        version = message.get("v", 1)
        envelope = Envelope(str(message["n"]), str(message["b"]), list(message["i"]), version)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WireError(f"not a cluster message: {data[:80]!r}") from exc
    if not isinstance(version, int) or not OLDEST_READ <= version <= VERSION:
        raise WireError(
            f"node {envelope.node} speaks version {version!r} of the cluster protocol; this"
            f" node reads versions {OLDEST_READ} to {VERSION}"
        )
    items = envelope.items
    if not all(isinstance(item, list) and item and isinstance(item[0], str) for item in items):
        raise WireError(f"not a cluster message: {data[:80]!r}")
    return envelope


def removed_to_wire(rows: RemovedAccount) -> dict[str, Any]:
    return {
        "username": rows.username,
        "roster_items": {
            owner: [_item_to_wire(item), version]
            for owner, (item, version) in rows.roster_items.items()
        },
        "pending_owners": list(rows.pending_owners),
        "block_list_owners": list(rows.block_list_owners),
        "presence_block_owners": list(rows.presence_block_owners),
    }


def removed_from_wire(fields: Any) -> RemovedAccount:
    try:
        return RemovedAccount(
            str(fields["username"]),
            {
                str(owner): (_item_from_wire(item), int(version))
                for owner, (item, version) in fields["roster_items"].items()
            },
            tuple(str(owner) for owner in fields["pending_owners"]),
            tuple(str(owner) for owner in fields["block_list_owners"]),
            tuple(str(owner) for owner in fields["presence_block_owners"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WireError(f"not a removed account: {fields!r}") from exc


def _item_to_wire(item: RosterItem) -> list[Any]:
    return [
        item.contact,
        item.name,
        item.subscription,
        item.pending_out,
        item.approved,
        list(item.groups),
    ]


def _item_from_wire(fields: Any) -> RosterItem:
    contact, name, subscription, pending_out, approved, groups = fields
    return RosterItem(
        str(contact),
        str(name) if name is not None else None,
        str(subscription),
        bool(pending_out),
        bool(approved),
        tuple(str(group) for group in groups),
    )


def encode_entry(entry: Entry) -> str:
    """An entry as this node's directory in Redis keeps it."""
    return json.dumps(entry.to_wire(), separators=(",", ":"))


def stanza_text(stanza: Element) -> str:
    return serialize(stanza).decode()


def parse_stanza(text: str) -> Element:
    try:
        return etree.fromstring(text.encode(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise WireError(f"not a stanza: {text[:80]!r}") from exc


def fields(item: Item, count: int) -> list[Any]:
    """The first `count` fields after an item's kind; a newer node's trailing ones are not
    read. WireError if there are fewer."""
    found = item[1 : count + 1]
    if len(found) < count:
        raise WireError(f"{item[0]} needs {count} fields, not {len(item) - 1}")
    return found
