"""The load generator's pure parts: statistics, the ring population, and the byte-level
scanning that stands in for an XML parser. Fast and without network; it also proves that
scripts/bench.py still imports."""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

BENCH_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chorus_bench", BENCH_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


# Statistics


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 99) == 99
    assert bench.percentile(values, 100) == 100
    assert bench.percentile(values, 0) == 1


def test_percentile_unsorted_and_small() -> None:
    assert bench.percentile([30, 10, 20], 50) == 20
    assert bench.percentile([5], 99) == 5
    assert bench.percentile([], 50) is None


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        bench.percentile([1, 2], 101)


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1), st.floats(0, 100))
def test_percentile_is_a_member_between_min_and_max(values: list[int], pct: float) -> None:
    found = bench.percentile(values, pct)
    assert found in values
    assert min(values) <= found <= max(values)


def test_latency_summary_in_milliseconds() -> None:
    summary = bench.latency_summary([1_000_000, 2_000_000, 3_000_000, 250_000_000])
    assert summary == {"p50_ms": 2.0, "p99_ms": 250.0, "max_ms": 250.0}
    assert bench.latency_summary([]) == {"p50_ms": None, "p99_ms": None, "max_ms": None}


def test_count_loss() -> None:
    assert bench.count_loss([3, 3, 3], 3) == (0, 0)
    assert bench.count_loss([3, 1, 0], 3) == (5, 0)
    assert bench.count_loss([4, 3, 2], 3) == (1, 1)


# The ring population


def test_ring_neighbours_wrap_around() -> None:
    assert sorted(bench.ring_neighbours(0, 10, 4)) == [1, 2, 8, 9]
    assert sorted(bench.ring_neighbours(9, 10, 2)) == [0, 8]


@given(st.integers(min_value=3, max_value=60), st.data())
def test_ring_is_symmetric_and_complete(users: int, data: st.DataObject) -> None:
    contacts = data.draw(st.integers(min_value=0, max_value=users - 1).map(lambda k: k - k % 2))
    neighbours = {i: bench.ring_neighbours(i, users, contacts) for i in range(users)}
    for index, found in neighbours.items():
        assert len(found) == len(set(found)) == contacts
        assert index not in found
        for other in found:
            assert index in neighbours[other]
    pairs = bench.ring_pairs(users, contacts)
    assert len(pairs) == len({frozenset(p) for p in pairs}) == users * contacts // 2
    assert {frozenset(p) for p in pairs} == {
        frozenset((i, j)) for i, found in neighbours.items() for j in found
    }


@pytest.mark.parametrize(("users", "contacts"), [(10, 3), (10, 10), (4, -2)])
def test_ring_rejects_impossible_sizes(users: int, contacts: int) -> None:
    with pytest.raises(ValueError):
        bench.ring_pairs(users, contacts)


def test_spaced_indices_keep_their_distance_around_the_ring() -> None:
    found = bench.spaced_indices(100, 20, 11)
    assert found == [0, 11, 22, 33, 44, 55, 66, 77, 88]
    for first, second in itertools.pairwise([*found, found[0] + 100]):
        assert second - first >= 11
    assert bench.spaced_indices(500, 4, 11) == [0, 125, 250, 375]


# Byte-level parsing


def test_attributes_both_quote_styles() -> None:
    stanza = b"<presence from='a@b/c' to=\"d@e\" type='unavailable'><status>x='1'</status>"
    assert bench.attributes(stanza) == {
        b"from": b"a@b/c",
        b"to": b"d@e",
        b"type": b"unavailable",
    }


def test_roster_items_from_both_servers_styles() -> None:
    prosody = (
        b"<iq type='set' id='lx1'><query xmlns='jabber:iq:roster' ver='2'>"
        b"<item subscription='both' jid='bu1@bench.local'/></query></iq>"
    )
    chorus = (
        b'<iq xmlns="jabber:client" type="set" id="push3"><query xmlns="jabber:iq:roster">'
        b'<item jid="bu2@bench.local" subscription="to" ask="subscribe"><group>g</group></item>'
        b'<item jid="bu3@bench.local"/></query></iq>'
    )
    assert bench.roster_items(prosody) == [(b"bu1@bench.local", b"both")]
    assert bench.roster_items(chorus) == [
        (b"bu2@bench.local", b"to"),
        (b"bu3@bench.local", b"none"),
    ]


def test_quote_picks_quotes_the_value_cannot_contain() -> None:
    assert bench.quote(b"abc") == b"'abc'"
    assert bench.quote(b"it's") == b'"it\'s"'


STREAM = (
    b"<presence from='bu1@bench.local/bench' to='bu2@bench.local/bench'/>"
    b'<iq type="set" id="p1" to="bu2@bench.local/bench"><query xmlns="jabber:iq:roster">'
    b'<item jid="bu1@bench.local" subscription="both"/></query></iq>'
    b"<message to='x'><body>hi</body></message>"
    b"<presence from='bu3@bench.local/bench'><status>away</status></presence>"
)


@pytest.mark.parametrize("cut", range(0, len(STREAM) + 1, 7))
def test_stanza_splitter_across_reads(cut: int) -> None:
    splitter = bench.StanzaSplitter()
    found = splitter.feed(STREAM[:cut]) + splitter.feed(STREAM[cut:])
    assert [stanza[:4] for stanza in found] == [b"<pre", b"<iq ", b"<mes", b"<pre"]
    assert b"".join(found) == STREAM
    assert splitter.pending == b""


def test_stanza_splitter_keeps_an_incomplete_stanza() -> None:
    splitter = bench.StanzaSplitter()
    assert splitter.feed(b"<presence from='a'><status>hal") == []
    assert splitter.feed(b"f</status></presence>") == [
        b"<presence from='a'><status>half</status></presence>"
    ]


def markers_stream(count: int) -> bytes:
    parts = []
    for seq in range(count):
        parts.append(
            b"<presence xmlns='jabber:client' from='bu%d@bench.local/bench'"
            b" to='bu0@bench.local/bench'>" % seq
        )
        parts.append(bench.marker_presence(7, seq, seq, 10**18 + seq)[len(b"<presence>") :])
    return b"".join(parts)


def test_marker_presence_round_trip() -> None:
    data = bench.marker_presence(3, 12, 456, 789_000_000_001)
    match = bench.MARKER.search(data)
    assert match is not None
    assert match.groups() == (b"3", b"12", b"456", b"789000000001")


@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40))
def test_marker_scanner_sees_every_marker_once_whatever_the_reads(sizes: list[int]) -> None:
    data = markers_stream(25)
    scanner = bench.MarkerScanner(bench.MARKER)
    seen = []
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            break
        seen += [int(m[3]) for m in scanner.feed(data[position : position + size])]
        position += size
    assert seen == list(range(25))
    assert len(scanner.pending) <= bench.MARKER_TAIL


def test_marker_scanner_ignores_other_status_text() -> None:
    scanner = bench.MarkerScanner(bench.MARKER)
    assert scanner.feed(b"<presence><status>b one two</status></presence>") == []
    assert scanner.feed(b"<presence><status>Busy</status></presence>") == []


def test_ping_requests_are_found_in_either_style() -> None:
    prosody = b"<iq type='get' id='p1' from='bench.local'><ping xmlns='urn:xmpp:ping'/></iq>"
    chorus = (
        b'<iq xmlns="jabber:client" type="get" id="chorus-ping-1" from="bench.local"'
        b' to="bu1@bench.local/bench"><ping xmlns="urn:xmpp:ping"/></iq>'
    )
    for stanza, expected in ((prosody, b"p1"), (chorus, b"chorus-ping-1")):
        match = bench.PING_IQ.search(stanza)
        assert match is not None
        assert bench.attributes(b"<iq" + match[1] + b">")[b"id"] == expected


def test_negotiation_patterns() -> None:
    features = (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' version='1.0'>"
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
    )
    assert bench.FEATURES_END.search(features) is not None
    assert bench.FEATURES_END.search(features[:-5]) is None
    success = bench.SASL_REPLY.search(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    assert success is not None and success[1] == b"success"
    challenge = bench.SASL_REPLY.search(b"<challenge xmlns='x'>cj1hYmM=</challenge>")
    assert challenge is not None and challenge[2] == b"cj1hYmM="
    bound = b"<iq type='result' id='bind1'><bind><jid>bu1@bench.local/bench</jid></bind></iq>"
    iq = bench.IQ_ANY.search(bound)
    assert iq is not None and bench.BOUND_JID.search(iq.group())[1] == b"bu1@bench.local/bench"


def test_step_verdict() -> None:
    step = {
        "lost": 0,
        "duplicated": 0,
        "p99_ms": 20.0,
        "offered_changes_per_s": 100.0,
        "changes": 300,
        "expected": 3000,
        "deliveries_per_s": 990.0,
    }
    assert bench.step_verdict(step, 1000.0, 0.9) is None
    assert bench.step_verdict({**step, "lost": 1}, 1000.0, 0.9) == "deliveries lost"
    assert bench.step_verdict({**step, "p99_ms": 1500.0}, 1000.0, 0.9) == "p99 over the limit"
    assert bench.step_verdict({**step, "deliveries_per_s": 700.0}, 1000.0, 0.9) == (
        "deliveries fell behind the offered rate"
    )


def test_rss_of_this_process() -> None:
    assert bench.rss_kib(os.getpid()) > 0


def test_command_line_parses_every_scenario() -> None:
    parser = bench.build_parser()
    for argv in (
        ["provision", "--users", "20", "--contacts", "4", "--idle-users", "5"],
        ["login", "--mechanism", "SCRAM-SHA-1"],
        ["fanout", "--changes", "2"],
        ["idle", "--sessions", "10", "--server-pid", "1"],
        ["ghost", "--silent", "--silent-bound", "90"],
        ["abuse", "--seconds", "1", "--roster-items", "30", "--resources", "4"],
        ["bystander", "--user", "bxping", "--core", "0"],
    ):
        assert parser.parse_args(["--port", "15223", *argv]).scenario == argv[0]


# The abuse scenario


def test_ping_summary_counts_unanswered_pings_at_their_wait() -> None:
    summary = bench.ping_summary([1_000_000, 2_000_000, 3_000_000], [900_000_000], errors=1)
    assert summary == {
        "pings": 4,
        "answered": 3,
        "unanswered": 1,
        "errors": 1,
        "p50_ms": 2.0,
        "p99_ms": 900.0,
        "max_ms": 900.0,
    }
    assert bench.ping_summary([], [])["p99_ms"] is None


def test_read_budget_paces_a_slow_reader() -> None:
    budget = bench.ReadBudget(rate=1000, burst=100, now=0.0)
    assert budget.spend(60, 0.0)
    # A read may overdraw it; the reader then waits until the debt is repaid.
    assert not budget.spend(540, 0.0)
    assert not budget.available(0.49)
    assert budget.available(0.51)
    # Idle time refills up to the burst only.
    budget.available(100.0)
    assert budget.tokens == 100
    with pytest.raises(ValueError):
        bench.ReadBudget(rate=0, burst=1, now=0.0)


def test_roster_set_carries_one_item() -> None:
    payload = bench.roster_set(bench.contact_jid(7, "bench.local"), b"Contact 7")
    assert payload == (
        b"<query xmlns='jabber:iq:roster'><item jid='bxc7@bench.local' name='Contact 7'/></query>"
    )
    assert bench.roster_items(payload) == [(b"bxc7@bench.local", b"none")]


def test_flood_replies_in_either_style() -> None:
    result = (
        b'<iq xmlns="jabber:client" type="result" id="f1"><query xmlns="jabber:iq:roster">'
        b'<item jid="bxc1@bench.local" name="Contact 1"/></query></iq>'
    )
    error = (
        b"<iq type='error' id='f2'><error type='wait'><resource-constraint"
        b" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    )
    found = [m[0][:4] for m in bench.FLOOD_REPLY.finditer(result + error + result)]
    assert found == [b"</qu", b"<iq ", b"</qu"]


def test_storm_pong_only_for_its_own_id() -> None:
    assert bench.STORM_PONG.search(b"<iq type='result' id='ml' from='bench.local'/>")
    assert bench.STORM_PONG.search(b'<iq xmlns="jabber:client" type="result" id="ml"/>')
    assert not bench.STORM_PONG.search(b"<iq type='result' id='mlx'/>")
    assert not bench.STORM_PONG.search(b"<iq type='get' id='html'><ping xmlns='urn:xmpp:ping'/>")


def abuse_conn() -> Any:
    """A connection of the abuse scenario, for feeding its handlers bytes by hand."""
    run = bench.Run(bench.build_parser().parse_args(["abuse"]))
    # No transport: what the handlers write goes nowhere.
    return bench.Conn(run, 0, "bxmulti")


STORM_STREAM = b"".join(
    b"<presence from='bxmulti@bench.local/bench%d'><show>away</show></presence>" % n
    + (b"<iq type='result' id='ml' to='bxmulti@bench.local/bench0'/>" if n % 3 == 0 else b"")
    for n in range(30)
)


@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40))
def test_storm_counts_every_presence_and_pong_once_whatever_the_reads(sizes: list[int]) -> None:
    conn = abuse_conn()
    conn.run.storm = bench.Storm(running=True)
    conn.scanner = bench.MarkerScanner(bench.STORM_PONG)
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(STORM_STREAM):
            break
        bench.storm_data(conn, STORM_STREAM[position : position + size])
        position += size
    assert (conn.run.storm.presences, conn.run.storm.changes) == (30, 10)


def test_bystander_times_its_own_pings_only() -> None:
    conn = abuse_conn()
    conn.run.pings = {b"bp1": 0, b"bp2": 0}
    bench.bystander_data(
        conn,
        b"<iq type='result' id='bp1' from='bench.local'/>"
        b"<iq type='error' id='bp2' from='bench.local'><error type='cancel'/></iq>"
        b"<iq type='result' id='other'/>",
    )
    assert conn.run.pings == {}
    assert len(conn.run.rtts_ns) == 2 and conn.run.ping_errors == 1


def test_cpu_seconds_of_this_process() -> None:
    assert bench.cpu_seconds(os.getpid()) > 0


async def test_refine_closes_in_on_the_highest_sustained_rate() -> None:
    tried: list[float] = []

    async def sustained(rate: float) -> bool | None:
        tried.append(rate)
        return rate <= 1300

    best = await bench.refine(1000.0, 1500.0, 2, sustained)
    assert [round(rate) for rate in tried] == [1225, 1355]
    assert round(best) == 1225


async def test_refine_stops_when_asked() -> None:
    async def stop(_rate: float) -> bool | None:
        return None

    assert await bench.refine(1000.0, 1500.0, 3, stop) == 1000.0
