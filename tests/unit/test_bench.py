"""The load generator's pure parts: statistics, the ring and company populations, and the
byte-level scanning that stands in for an XML parser; and bench-compare's report: its three
server columns, ratios and verdicts. Fast and without network; it also proves that
scripts/bench.py and scripts/bench-compare still import."""

from __future__ import annotations

import importlib.machinery
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


def _load_compare() -> ModuleType:
    # No .py suffix: the loader has to be named.
    loader = importlib.machinery.SourceFileLoader("chorus_bench_compare", str(COMPARE_PATH))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    loader.exec_module(module)
    return module


COMPARE_PATH = BENCH_PATH.with_name("bench-compare")
compare = _load_compare()


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
        ["company-provision", "--groups", "2", "--group-size", "20"],
        ["company", "--groups", "2", "--group-size", "20", "--singles", "5", "--rate-start", "5"],
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


# The company scenario


def test_company_groups_are_disjoint_and_ordered() -> None:
    groups = bench.company_groups(3, 4)
    assert list(groups) == ["g0", "g1", "g2"]
    assert groups["g1"] == ["bg4", "bg5", "bg6", "bg7"]
    members = list(itertools.chain(*groups.values()))
    assert len(set(members)) == 12
    assert [user for _, user in bench.company_users(3, 4)] == members


@pytest.mark.parametrize(("groups", "size"), [(0, 10), (2, 1)])
def test_company_rejects_empty_groups(groups: int, size: int) -> None:
    with pytest.raises(ValueError):
        bench.company_groups(groups, size)


def test_company_sender_from_any_resource() -> None:
    assert bench.company_sender(b"bg17@bench.local/bench") == 17
    assert bench.company_sender(b"bg3@bench.local") == 3
    assert bench.company_sender(b"bu3@bench.local/bench") is None
    assert bench.company_sender(b"") is None


def test_company_counts_each_group_mate_once() -> None:
    company = bench.Company(3, [set() for _ in range(6)])
    # User 1 is in group 0 (users 0-2): itself, group 1 and repeats do not count.
    for sender in (b"bg1@d/r", b"bg4@d/r", b"bg0@d/r", b"bg0@d/other", b"bu2@d/r"):
        company.presence(1, sender)
    assert company.seen[1] == {0}
    assert company.complete == 0
    company.presence(1, b"bg2@d/r")
    assert company.complete == 1
    assert not company.done.is_set()
    for receiver in range(6):
        group = receiver // 3
        for mate in range(group * 3, group * 3 + 3):
            company.presence(receiver, b"bg%d@d/r" % mate)
    assert company.complete == 6
    assert company.done.is_set()


# bench-compare's report


def test_table_has_a_column_and_a_ratio_per_reference() -> None:
    names = ["chorus-presence", "prosody", "ejabberd"]
    header, align = compare.table_header(names)
    assert header == (
        "| Metric | chorus-presence | Prosody | ejabberd | chorus/Prosody | chorus/ejabberd"
        " | better is | ahead |"
    )
    assert align.count("|") == header.count("|")
    row = compare.table_row(
        "Fan-out",
        {"chorus-presence": 300.0, "prosody": 100.0, "ejabberd": 150.0},
        "/s",
        "higher",
        names,
    )
    assert row == "| Fan-out | 300 | 100 | 150 | 3.00 | 2.00 | higher | chorus-presence |"


def test_ahead_is_against_the_better_reference() -> None:
    values = {"chorus-presence": 120.0, "prosody": 100.0, "ejabberd": 150.0}
    assert compare.best_anchor(values, "higher") == ("ejabberd", 150.0)
    assert compare.ahead(values, "higher") == "ejabberd"
    assert compare.best_anchor(values, "lower") == ("prosody", 100.0)
    assert compare.ahead(values, "lower") == "Prosody"
    assert compare.ahead({**values, "chorus-presence": 151.0}, "higher") == "even"
    assert compare.ahead({**values, "chorus-presence": 90.0}, "lower") == "chorus-presence"
    # A reference that measured nothing is no comparison; nor is a row without a direction.
    assert compare.ahead({"chorus-presence": 1.0, "prosody": None}, "higher") == ""
    assert compare.ahead(values, "-") == ""


def test_one_server_alone_has_no_ratio() -> None:
    header, _ = compare.table_header(["prosody"])
    assert header == "| Metric | Prosody | better is | ahead |"
    row = compare.table_row("Logins", {"prosody": 10.0}, "/s", "higher", ["prosody"])
    assert row == "| Logins | 10 | higher |  |"


def test_ratio_of_missing_or_zero_is_none() -> None:
    assert compare.ratio_of(3.0, 2.0) == 1.5
    assert compare.ratio_of(None, 2.0) is None
    assert compare.ratio_of(3.0, 0.0) is None


def test_exchanges_per_s_only_for_a_finished_build() -> None:
    built = {"subscribe_sent": 400, "seconds": 4.0, "users": 40, "users_complete": 40}
    assert compare.exchanges_per_s({"provision": {"rosters": built}}) == 100.0
    unfinished = {**built, "users_complete": 39}
    assert compare.exchanges_per_s({"provision": {"rosters": unfinished}}) is None
    again = {**built, "already_built": True}
    assert compare.exchanges_per_s({"provision": {"rosters": again}}) is None
    assert compare.exchanges_per_s({}) is None


def test_samples_carry_the_one_provisioning() -> None:
    runs = {"prosody": [{"fanout": {"a": 1}}, {"fanout": {"a": 2}}]}
    provisioning = {"prosody": {"registration": {"registrations_per_s": 50.0}}}
    found = compare.samples(runs, provisioning, "prosody")
    assert [s["fanout"]["a"] for s in found] == [1, 2]
    assert all(s["provision"] == provisioning["prosody"] for s in found)
    # Provisioned but not run (a failed repetition): its rows still have a value.
    assert compare.samples({}, provisioning, "prosody") == [{"provision": provisioning["prosody"]}]


def test_prosody_groups_file() -> None:
    text = compare.prosody_groups({"g0": ["bg0", "bg1"], "g1": ["bg2", "bg3"]})
    assert text.splitlines() == [
        "[g0]",
        "bg0@bench.local",
        "bg1@bench.local",
        "",
        "[g1]",
        "bg2@bench.local",
        "bg3@bench.local",
    ]


def test_ejabberd_errors_are_collected() -> None:
    text = (
        "2026-12-02 15:34:16.319469+00:00 [info] Loading configuration from x.yml\n"
        "2026-12-02 15:34:17.100000+00:00 [error] Failed to process stream 0x7f00\n"
        "2026-12-02 15:34:18.100000+00:00 [warning] No certificate found\n"
    )
    assert compare.error_messages(text) == ["Failed to process stream 0x..."]


def test_company_targets_want_both_references_behind() -> None:
    rows = compare.company_rows()
    storm, logins = rows[0][0], rows[1][0]
    medians = {
        storm: {"chorus-presence": 12.0, "prosody": 40.0, "ejabberd": 20.0},
        logins: {"chorus-presence": 150.0, "prosody": 100.0, "ejabberd": 200.0},
    }
    found = compare.company_targets(medians, rows[:2])
    assert found[2].endswith("| yes |") and "12 s vs 20 s (ejabberd)" in found[2]
    assert found[3].endswith("| no |") and "200 (ejabberd)" in found[3]
    assert found[-1] == "| Morning login storm under 30 s | 12 s | yes |"
