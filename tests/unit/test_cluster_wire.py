"""The cluster's wire format across versions: what a newer node may add, an older one skips."""

from __future__ import annotations

import json

import pytest

from chorus_presence.cluster import wire


def test_an_envelope_names_the_version_it_speaks() -> None:
    data = wire.encode("node-a", "boot", [[wire.BYE]])
    assert json.loads(data)["v"] == wire.VERSION
    envelope = wire.decode(data)
    assert (envelope.node, envelope.boot, envelope.items, envelope.version) == (
        "node-a",
        "boot",
        [[wire.BYE]],
        wire.VERSION,
    )


def test_an_envelope_without_a_version_is_version_one() -> None:
    envelope = wire.decode(b'{"n":"node-a","b":"boot","i":[["bye"]]}')
    assert envelope.version == 1


@pytest.mark.parametrize("version", [wire.VERSION + 1, 0, "1", None])
def test_a_version_this_node_does_not_read_is_refused_naming_it(version: object) -> None:
    data = json.dumps({"v": version, "n": "node-c", "b": "boot", "i": []}).encode()
    with pytest.raises(wire.WireError, match=r"node node-c speaks version .* of the cluster"):
        wire.decode(data)


def test_trailing_fields_of_a_newer_node_are_not_read() -> None:
    assert wire.fields(["send", "a@x/r", "<message/>", "extra"], 2) == ["a@x/r", "<message/>"]
    entry = wire.Entry.from_wire(["a@x/r", "sid", None, 0, "online", {"new": 1}])
    assert entry == wire.Entry("a@x/r", "sid", None, 0, "online")


def test_an_item_with_too_few_fields_is_refused() -> None:
    with pytest.raises(wire.WireError, match="send needs 2 fields, not 1"):
        wire.fields(["send", "a@x/r"], 2)


@pytest.mark.parametrize("data", [b"[]", b"{}", b"not json", b'{"n":"a","b":"b","i":[[]]}'])
def test_what_no_node_sends_is_refused(data: bytes) -> None:
    with pytest.raises(wire.WireError, match="not a cluster message"):
        wire.decode(data)
