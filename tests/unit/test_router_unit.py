"""The stanza router on a bare bus: which topics a stanza fires by its kind and addressing,
and the error replies the router itself gives (RFC 6120 sections 8.3 and 10, RFC 6121 section
8), with no service subscribed, only recorders and fake sessions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree

from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import IqRequest, StanzaEvent
from chorus_presence.core.router import StanzaRouter
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, element
from tests.unit.fakes import STANZAS, FakeSession, c, error_condition, one, parse

DOMAIN = "example.com"
ALICE = JID("alice", DOMAIN, "desk")
BOB = JID("bob", DOMAIN, "phone")
PING = ns.qname(ns.PING, "ping")
QUERY = "{urn:test}query"
STANZA_TOPICS = (
    topics.MESSAGE_OUT,
    topics.MESSAGE_IN_BARE,
    topics.MESSAGE_IN_FULL,
    topics.MESSAGE_IN_SERVER,
    topics.PRESENCE_OUT,
    topics.PRESENCE_IN_BARE,
    topics.PRESENCE_IN_FULL,
    topics.IQ_OUT,
    topics.IQ_IN_BARE,
    topics.IQ_IN_FULL,
)


@dataclass
class Net:
    """A router, its bus, two bound sessions, and a log of (topic, event) fired."""

    bus: Bus
    router: StanzaRouter
    sessions: SessionRegistry
    alice: FakeSession
    bob: FakeSession
    fired: list[tuple[str, Any]] = field(default_factory=list)

    def watch(self, *names: str) -> None:
        """Record every firing of these topics, at a priority above anything a test adds."""
        for name in names:
            self.bus.on(name, self._noting(name), priority=1000)

    def _noting(self, name: str) -> Callable[[Any], None]:
        def note(event: Any) -> None:
            self.fired.append((name, event))

        return note

    @property
    def topics(self) -> list[str]:
        return [name for name, _ in self.fired]

    async def send(self, xml: str, session: FakeSession | None = None) -> Element:
        sender = session or self.alice
        stanza = parse(xml)
        stanza.set("from", str(sender.jid))
        await self.router.route(sender, stanza, etree.QName(stanza).localname)
        return stanza


@pytest.fixture
def net() -> Net:
    bus, sessions = Bus(), SessionRegistry()
    alice, bob = FakeSession(ALICE), FakeSession(BOB)
    sessions.bind(alice)
    sessions.bind(bob)
    result = Net(bus, StanzaRouter(DOMAIN, bus, sessions), sessions, alice, bob)
    result.watch(*STANZA_TOPICS)
    return result


def stop(_event: object) -> object:
    return STOP


def the_error(session: FakeSession) -> Element:
    [reply] = session.received
    assert reply.get("type") == "error", etree.tostring(reply)
    return reply


# Messages


@pytest.mark.parametrize(
    ("to", "topic", "target"),
    [
        ("bob@example.com", topics.MESSAGE_IN_BARE, JID("bob", DOMAIN)),
        ("bob@example.com/phone", topics.MESSAGE_IN_FULL, BOB),
        ("example.com", topics.MESSAGE_IN_SERVER, JID(None, DOMAIN)),
        ("example.com/admin", topics.MESSAGE_IN_SERVER, JID(None, DOMAIN, "admin")),
    ],
)
async def test_a_message_fires_out_then_its_addressing(
    net: Net, to: str, topic: str, target: JID
) -> None:
    net.bus.on(topic, stop)
    stanza = await net.send(f"<message to='{to}'><body>hi</body></message>")
    assert net.topics == [topics.MESSAGE_OUT, topic]
    for _, event in net.fired:
        assert isinstance(event, StanzaEvent)
        assert event.stanza is stanza and event.session is net.alice
        assert event.target == target and event.sender == ALICE
    assert net.alice.received == []


async def test_a_message_without_to_is_for_the_senders_own_account(net: Net) -> None:
    net.bus.on(topics.MESSAGE_IN_BARE, stop)
    await net.send("<message><body>note to self</body></message>")
    assert net.topics == [topics.MESSAGE_OUT, topics.MESSAGE_IN_BARE]
    assert net.fired[-1][1].target == ALICE.bare


async def test_a_message_to_a_remote_domain_is_refused_before_any_topic(net: Net) -> None:
    await net.send("<message id='m1' to='juliet@capulet.example'><body>hi</body></message>")
    assert net.topics == []
    reply = the_error(net.alice)
    assert reply.tag == c("message")
    assert error_condition(reply) == "remote-server-not-found"
    # Addresses swapped, the id kept (RFC 6120 section 8.3.1).
    assert (reply.get("from"), reply.get("to"), reply.get("id")) == (
        "juliet@capulet.example",
        str(ALICE),
        "m1",
    )
    assert one(reply, c("error")).get("type") == "cancel"


async def test_a_message_nobody_takes_is_service_unavailable(net: Net) -> None:
    await net.send("<message id='m2' to='bob@example.com'><body>hi</body></message>")
    assert net.topics == [topics.MESSAGE_OUT, topics.MESSAGE_IN_BARE]
    reply = the_error(net.alice)
    assert error_condition(reply) == "service-unavailable"
    assert reply.get("from") == "bob@example.com"


async def test_a_message_stopped_on_the_way_out_goes_no_further(net: Net) -> None:
    net.bus.on(topics.MESSAGE_OUT, stop)
    await net.send("<message to='bob@example.com'><body>hi</body></message>")
    assert net.topics == [topics.MESSAGE_OUT]
    assert net.alice.received == []


# Presence


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        (None, [topics.PRESENCE_OUT]),
        ("bob@example.com", [topics.PRESENCE_OUT, topics.PRESENCE_IN_BARE]),
        ("bob@example.com/phone", [topics.PRESENCE_OUT, topics.PRESENCE_IN_FULL]),
        # The server and remote domains have no account to deliver to: out only.
        ("example.com", [topics.PRESENCE_OUT]),
        ("romeo@montague.example", [topics.PRESENCE_OUT]),
    ],
)
async def test_presence_fires_out_then_its_addressing(
    net: Net, to: str | None, expected: list[str]
) -> None:
    addressed = f" to='{to}'" if to else ""
    await net.send(f"<presence{addressed}/>")
    assert net.topics == expected
    # Presence is never answered with an error for lack of a taker.
    assert net.alice.received == []


async def test_presence_stopped_on_the_way_out_goes_no_further(net: Net) -> None:
    net.bus.on(topics.PRESENCE_OUT, stop)
    await net.send("<presence to='bob@example.com'/>")
    assert net.topics == [topics.PRESENCE_OUT]


async def test_presence_of_an_unknown_type_is_a_bad_request(net: Net) -> None:
    await net.send("<presence type='invisible' to='bob@example.com'/>")
    assert net.topics == []
    reply = the_error(net.alice)
    assert reply.tag == c("presence")
    assert error_condition(reply) == "bad-request"


# IQs


def answering(payload_tag: str | None = None) -> Callable[[IqRequest], Element]:
    """An IQ handler replying with a result (holding a copy of `payload_tag` if given)."""

    def answer(request: IqRequest) -> Element:
        return request.reply(element(payload_tag, namespace="urn:test") if payload_tag else None)

    return answer


async def test_an_iq_to_the_server_reaches_its_server_scope_handler(net: Net) -> None:
    requests: list[IqRequest] = []

    def pong(request: IqRequest) -> Element:
        requests.append(request)
        return request.reply()

    net.bus.on(topics.iq("get", "server", PING), pong)
    await net.send(f"<iq type='get' id='p1' to='example.com'><ping xmlns='{ns.PING}'/></iq>")
    assert net.topics == [topics.IQ_OUT]
    [request] = requests
    assert request.payload.tag == PING
    assert request.sender == ALICE and request.target == JID(None, DOMAIN)
    [reply] = net.alice.received
    assert (reply.get("type"), reply.get("id"), reply.get("to")) == ("result", "p1", str(ALICE))
    assert reply.get("from") == "example.com"


async def test_an_iq_without_to_prefers_the_account_scope(net: Net) -> None:
    bare, server = answering("bare"), answering("server")
    net.bus.on(topics.iq("get", "bare", QUERY), bare)
    net.bus.on(topics.iq("get", "server", QUERY), server)
    await net.send("<iq type='get' id='q1'><query xmlns='urn:test'/></iq>")
    [reply] = net.alice.received
    assert reply[0].tag == "{urn:test}bare"
    # The sender's own account: nobody else's filters are asked.
    assert topics.IQ_IN_BARE not in net.topics


async def test_an_iq_without_to_falls_back_to_the_server_scope(net: Net) -> None:
    net.bus.on(topics.iq("get", "server", QUERY), answering("server"))
    await net.send("<iq type='get' id='q2'><query xmlns='urn:test'/></iq>")
    [reply] = net.alice.received
    assert reply[0].tag == "{urn:test}server"


async def test_an_iq_to_another_account_passes_its_filters_first(net: Net) -> None:
    net.bus.on(topics.iq("get", "bare", QUERY), answering("bare"))
    await net.send("<iq type='get' id='q3' to='bob@example.com'><query xmlns='urn:test'/></iq>")
    assert net.topics == [topics.IQ_OUT, topics.IQ_IN_BARE]
    [reply] = net.alice.received
    assert reply.get("type") == "result" and reply.get("from") == "bob@example.com"


async def test_an_iq_to_ones_own_bare_jid_skips_the_inbound_filters(net: Net) -> None:
    net.bus.on(topics.iq("get", "bare", QUERY), answering("bare"))
    await net.send("<iq type='get' id='q4' to='alice@example.com'><query xmlns='urn:test'/></iq>")
    assert net.topics == [topics.IQ_OUT]
    assert net.alice.received[0].get("type") == "result"


async def test_an_iq_filter_refusal_on_the_inbound_side_is_the_reply(net: Net) -> None:
    def refuse(_event: StanzaEvent) -> None:
        raise StanzaError("forbidden")

    answered: list[IqRequest] = []
    net.bus.on(topics.IQ_IN_BARE, refuse)
    net.bus.on(topics.iq("get", "bare", QUERY), lambda request: answered.append(request))
    await net.send("<iq type='get' id='q5' to='bob@example.com'><query xmlns='urn:test'/></iq>")
    assert answered == []
    reply = the_error(net.alice)
    assert error_condition(reply) == "forbidden"
    assert one(reply, c("error")).get("type") == "auth"


async def test_an_iq_to_a_full_jid_is_forwarded_to_that_session(net: Net) -> None:
    await net.send(
        "<iq type='get' id='f1' to='bob@example.com/phone'><query xmlns='urn:test'/></iq>"
    )
    assert net.topics == [topics.IQ_OUT, topics.IQ_IN_FULL]
    [forwarded] = net.bob.received
    assert forwarded.get("id") == "f1" and forwarded.get("from") == str(ALICE)
    assert forwarded[0].tag == QUERY
    assert net.alice.received == []


async def test_an_iq_to_a_full_jid_not_online_is_service_unavailable(net: Net) -> None:
    await net.send(
        "<iq type='get' id='f2' to='bob@example.com/gone'><query xmlns='urn:test'/></iq>"
    )
    assert error_condition(the_error(net.alice)) == "service-unavailable"
    assert net.bob.received == []


async def test_an_iq_response_to_a_full_jid_is_delivered(net: Net) -> None:
    await net.send("<iq type='result' id='r1' to='bob@example.com/phone'/>")
    [delivered] = net.bob.received
    assert delivered.get("id") == "r1"
    # Through the inbound event too, so the block filter sees responses as well.
    assert net.topics == [topics.IQ_OUT, topics.IQ_IN_FULL]


async def test_an_iq_response_to_the_server_is_not_answered(net: Net) -> None:
    await net.send("<iq type='result' id='r2' to='example.com'/>")
    assert net.topics == [topics.IQ_OUT]
    # Responses are never answered, not even when nobody claims them.
    assert net.alice.received == []


async def test_an_iq_nobody_handles_is_service_unavailable(net: Net) -> None:
    await net.send("<iq type='get' id='u1'><query xmlns='urn:test:unknown'/></iq>")
    reply = the_error(net.alice)
    assert error_condition(reply) == "service-unavailable"
    # No 'to': the sender's own account answers (RFC 6120 section 10.3.3 once bound).
    assert (reply.get("from"), reply.get("to"), reply.get("id")) == (
        "alice@example.com",
        str(ALICE),
        "u1",
    )


async def test_an_iq_to_the_server_with_only_an_account_handler_is_unavailable(net: Net) -> None:
    net.bus.on(topics.iq("get", "bare", QUERY), answering("bare"))
    await net.send("<iq type='get' id='u2' to='example.com'><query xmlns='urn:test'/></iq>")
    assert error_condition(the_error(net.alice)) == "service-unavailable"


async def test_an_iq_handler_answering_none_is_service_unavailable(net: Net) -> None:
    net.bus.on(topics.iq("get", "server", QUERY), lambda _request: None)
    await net.send("<iq type='get' id='u3'><query xmlns='urn:test'/></iq>")
    assert error_condition(the_error(net.alice)) == "service-unavailable"


async def test_an_iq_handler_that_replied_itself_is_not_answered_twice(net: Net) -> None:
    def replies_itself(request: IqRequest) -> object:
        request.session.send(request.reply())
        return True

    net.bus.on(topics.iq("set", "server", QUERY), replies_itself)
    await net.send("<iq type='set' id='s1'><query xmlns='urn:test'/></iq>")
    assert [r.get("type") for r in net.alice.received] == ["result"]


@pytest.mark.parametrize(
    "xml",
    [
        "<iq type='get'><query xmlns='urn:test'/></iq>",
        "<iq type='fetch' id='b1'><query xmlns='urn:test'/></iq>",
        "<iq type='get' id='b2'/>",
        "<iq type='get' id='b3'><query xmlns='urn:test'/><query xmlns='urn:test'/></iq>",
    ],
)
async def test_malformed_iqs_are_bad_requests(net: Net, xml: str) -> None:
    net.bus.on(topics.iq("get", "server", QUERY), answering())
    await net.send(xml)
    assert error_condition(the_error(net.alice)) == "bad-request"
    assert net.topics == []


async def test_an_iq_get_to_a_remote_domain_is_remote_server_not_found(net: Net) -> None:
    await net.send("<iq type='get' id='x1' to='capulet.example'><query xmlns='urn:test'/></iq>")
    assert net.topics == []
    reply = the_error(net.alice)
    assert error_condition(reply) == "remote-server-not-found"
    assert reply.get("from") == "capulet.example"


# Errors raised on the way


async def test_a_stanza_error_from_a_handler_is_the_reply(net: Net) -> None:
    def refuse(_request: IqRequest) -> None:
        raise StanzaError(
            "not-acceptable",
            "Too long",
            error_type="wait",
            app_condition=("urn:test:errors", "too-long"),
        )

    net.bus.on(topics.iq("set", "server", QUERY), refuse)
    await net.send("<iq type='set' id='e1' to='example.com'><query xmlns='urn:test'/></iq>")
    reply = the_error(net.alice)
    assert (reply.get("id"), reply.get("from"), reply.get("to")) == ("e1", DOMAIN, str(ALICE))
    error = one(reply, c("error"))
    assert error.get("type") == "wait"
    assert error.find(f"{{{STANZAS}}}not-acceptable") is not None
    assert error.findtext(f"{{{STANZAS}}}text") == "Too long"
    assert error.find("{urn:test:errors}too-long") is not None


async def test_a_stanza_error_from_a_message_filter_is_the_reply(net: Net) -> None:
    def refuse(_event: StanzaEvent) -> None:
        raise StanzaError("not-allowed")

    net.bus.on(topics.MESSAGE_OUT, refuse)
    await net.send("<message id='e2' to='bob@example.com'><body>hi</body></message>")
    reply = the_error(net.alice)
    assert reply.tag == c("message") and error_condition(reply) == "not-allowed"
    assert net.bob.received == []


@pytest.mark.parametrize(
    ("xml", "topic"),
    [
        (
            "<iq type='get' id='boom'><query xmlns='urn:test'/></iq>",
            topics.iq("get", "bare", QUERY),
        ),
        ("<message id='boom' to='bob@example.com'/>", topics.MESSAGE_IN_BARE),
        ("<presence id='boom' to='bob@example.com'/>", topics.PRESENCE_IN_BARE),
    ],
)
async def test_a_failing_handler_is_internal_server_error_logged_once(
    net: Net, caplog: pytest.LogCaptureFixture, xml: str, topic: str
) -> None:
    async def broken(_event: object) -> None:
        raise RuntimeError("handler bug")

    net.bus.on(topic, broken)
    with caplog.at_level(logging.ERROR):
        await net.send(xml)
    reply = the_error(net.alice)
    assert reply.get("id") == "boom"
    assert error_condition(reply) == "internal-server-error"
    # The bug's text stays in the log; the client learns only the condition.
    assert b"handler bug" not in etree.tostring(reply)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    [record] = errors
    assert record.name == "chorus_presence.core.router"
    assert str(ALICE) in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


async def test_the_stream_goes_on_after_a_failing_handler(net: Net) -> None:
    calls: list[str] = []

    def flaky(request: IqRequest) -> Element:
        calls.append(request.stanza.get("id", ""))
        if len(calls) == 1:
            raise RuntimeError("first time only")
        return request.reply()

    net.bus.on(topics.iq("get", "server", QUERY), flaky)
    await net.send("<iq type='get' id='one'><query xmlns='urn:test'/></iq>")
    await net.send("<iq type='get' id='two'><query xmlns='urn:test'/></iq>")
    assert [(r.get("id"), r.get("type")) for r in net.alice.received] == [
        ("one", "error"),
        ("two", "result"),
    ]
    assert not net.alice.is_closed


@pytest.mark.parametrize(
    "xml",
    [
        # Each would be answered with an error if it were not an error itself.
        "<message type='error' id='n1' to='juliet@capulet.example'/>",
        "<message type='error' id='n2' to='bob@example.com'/>",
        "<iq type='error' id='n3' to='example.com'/>",
        "<message type='error' id='n4' to='@example.com'/>",
    ],
)
async def test_error_stanzas_are_never_answered_with_errors(net: Net, xml: str) -> None:
    await net.send(xml)
    assert net.alice.received == []


async def test_an_error_stanza_from_a_failing_handler_is_not_answered(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_event: object) -> None:
        raise RuntimeError("handler bug")

    net.bus.on(topics.MESSAGE_IN_BARE, broken)
    with caplog.at_level(logging.ERROR):
        await net.send("<message type='error' id='n5' to='bob@example.com'/>")
    assert net.alice.received == []


@pytest.mark.parametrize(
    "xml",
    [
        "<message id='j1' to='@example.com'/>",
        "<message id='j1' to='bob@'/>",
        "<presence id='j1' to='bob@exa mple.com'/>",
        "<iq type='get' id='j1' to='bob@example.com/'><query xmlns='urn:test'/></iq>",
    ],
)
async def test_a_malformed_to_is_jid_malformed_from_the_server(net: Net, xml: str) -> None:
    stanza = await net.send(xml)
    assert net.topics == []
    reply = the_error(net.alice)
    assert reply.tag == stanza.tag and reply.get("id") == "j1"
    assert error_condition(reply) == "jid-malformed"
    # RFC 6120 section 8.3.1: the malformed address is not carried back as 'from'.
    assert (reply.get("from"), reply.get("to")) == (DOMAIN, str(ALICE))
