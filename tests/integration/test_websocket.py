"""XMPP over WebSocket (RFC 7395): the same sessions, router and rules as TCP clients."""

from __future__ import annotations

import base64
import re

import aiohttp
import pytest

from tests.integration.harness import DOMAIN, PASSWORD, TIMEOUT, Harness, Inbox, link, presence_of

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
WEB = {"web": {"enabled": True, "port": 0}}


class WebSocketClient:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.received: list[str] = []

    async def send(self, text: str) -> None:
        await self.socket.send_str(text)

    async def expect(self, pattern: str) -> re.Match[str]:
        regex = re.compile(pattern, re.S)
        for index, message in enumerate(self.received):
            match = regex.search(message)
            if match:
                del self.received[: index + 1]
                return match
        while True:
            message = await self.socket.receive(timeout=TIMEOUT)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            match = regex.search(message.data)
            if match:
                return match
            self.received.append(message.data)

    async def open(self) -> None:
        await self.send(f"<open xmlns='{FRAMING}' to='{DOMAIN}' version='1.0'/>")
        await self.expect(f"<open xmlns='{FRAMING}' from=.{DOMAIN}.")
        await self.expect("</stream:features>")

    async def login(self, user: str, resource: str = "browser") -> None:
        await self.open()
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        await self.send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        )
        await self.expect("<success")
        await self.open()
        await self.send(
            "<iq xmlns='jabber:client' type='set' id='b'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource>"
            "</bind></iq>"
        )
        await self.expect(f"<jid>{user}@{DOMAIN}/{resource}</jid>")


async def connect(harness: Harness, session: aiohttp.ClientSession) -> WebSocketClient:
    url = f"http://127.0.0.1:{harness.server.web.port}/xmpp-websocket"
    socket = await session.ws_connect(url, protocols=("xmpp",))
    assert socket.protocol == "xmpp"
    return WebSocketClient(socket)


@pytest.mark.server_config(**WEB)
async def test_browser_session_is_a_resource_like_any_other(harness: Harness) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    bob = await harness.login("bob")
    bob_in = Inbox(bob)
    bob.send_presence()
    async with aiohttp.ClientSession() as http:
        alice = await connect(harness, http)
        await alice.login("alice")
        await alice.send("<presence xmlns='jabber:client'><show>dnd</show></presence>")
        seen = await bob_in.get(presence_of(bob, "dnd", f"alice@{DOMAIN}/browser"))
        assert seen.xml.findtext("{urn:chorus:presence:0}state") == "dnd"
        await alice.expect(f'<presence [^>]*from="bob@{DOMAIN}/test"')
        bob.send_message(mto=f"alice@{DOMAIN}/browser", mbody="hello browser", mtype="chat")
        await alice.expect("hello browser")
        await alice.send(f"<close xmlns='{FRAMING}'/>")
        await alice.expect(f"<close xmlns='{FRAMING}'/>")
        await bob_in.get(presence_of(bob, "unavailable", f"alice@{DOMAIN}/browser"))


@pytest.mark.server_config(**WEB)
async def test_websocket_errors(harness: Harness) -> None:
    async with aiohttp.ClientSession() as http:
        client = await connect(harness, http)
        await client.send(f"<open xmlns='{FRAMING}' to='elsewhere.example' version='1.0'/>")
        await client.expect(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown"
        )
        await client.expect(f"<close xmlns='{FRAMING}'/>")
        url = f"http://127.0.0.1:{harness.server.web.port}/xmpp-websocket"
        no_protocol = await http.ws_connect(url)
        message = await no_protocol.receive(timeout=TIMEOUT)
        assert message.type == aiohttp.WSMsgType.CLOSE
