"""One client-to-server stream (RFC 6120): header checks, features, STARTTLS, SASL and binding.

The stream layer knows XML, TLS and SASL. Once a resource is bound, every stanza has its `from`
stamped and goes to the router; the services behind it know the rules.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import ssl

from lxml import etree

from chorus_presence.server.context import ServerContext
from chorus_presence.server.sasl import SaslExchange, SaslFailure, SaslStep, offered_mechanisms
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError, StreamError
from chorus_presence.xmpp.jid import JID, JIDError, nameprep, resourceprep
from chorus_presence.xmpp.parser import StreamClose, StreamOpen, StreamParser
from chorus_presence.xmpp.stanza import (
    STANZA_KINDS,
    Element,
    child,
    iq_result,
    local_name,
    namespace_of,
    serialize,
    stream_error,
    stream_header,
)

log = logging.getLogger(__name__)

READ_SIZE = 65536
BIND_PAYLOAD = ns.qname(ns.BIND, "bind")


class ClientStream:
    """A client connection from accept to close; once bound, it is also the session."""

    def __init__(
        self, ctx: ServerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.ctx = ctx
        self._reader = reader
        self._writer = writer
        self.peer = _format_peer(writer.get_extra_info("peername"))
        self.stream_id = secrets.token_urlsafe(12)
        self.tls_active = False
        self.username: str | None = None
        self.jid: JID | None = None
        self._parser = self._new_parser()
        self._header_received = False
        self._header_sent = False
        self._restart = False
        self._closed = False
        self._end_reason = "connection closed by client"
        self._sasl: SaslExchange | None = None
        self._auth_failures = 0

    # Writing

    def send(self, stanza: Element) -> None:
        self.send_bytes(serialize(stanza))

    def send_bytes(self, data: bytes) -> None:
        if not self._closed:
            self._writer.write(data)

    def close(self, error: StreamError | None = None) -> None:
        """End the stream from outside its own task (a replaced resource, a shutdown)."""
        if self._closed:
            return
        self._end_stream(error)
        self._writer.close()

    def _end_stream(self, error: StreamError | None, reason: str | None = None) -> None:
        if self._closed:
            return
        self._end_reason = reason or (f"stream error {error.condition}" if error else "closed")
        if not self._header_sent:
            self._send_header(to=None)
        self._writer.write(stream_error(error) if error else b"</stream:stream>")
        self._closed = True

    # The read loop

    async def run(self) -> None:
        log.info("stream %s opened from %s", self.stream_id, self.peer)
        try:
            await self._read_loop()
        except StreamError as error:
            self._end_stream(error)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            self._end_reason = f"connection lost ({exc.__class__.__name__})"
        except Exception:
            log.exception("stream %s failed", self.stream_id)
            self._end_stream(StreamError("internal-server-error"))
        finally:
            await self._teardown(self._end_reason)

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self.ctx.config.limits
        auth_deadline = loop.time() + limits.auth_timeout
        while not self._closed:
            timeout = None
            if self.jid is None:
                timeout = auth_deadline - loop.time()
            if not self._header_received:
                timeout = min(timeout or limits.header_timeout, limits.header_timeout)
            try:
                data = await asyncio.wait_for(self._reader.read(READ_SIZE), timeout)
            except TimeoutError:
                raise StreamError("connection-timeout", "Negotiation took too long") from None
            if not data:
                return
            for event in self._parser.feed(data):
                await self._handle(event)
                if self._closed:
                    return
                if self._restart:
                    # The client may not send anything after a restart point before our reply.
                    self._restart = False
                    break

    async def _handle(self, event: StreamOpen | StreamClose | Element) -> None:
        if isinstance(event, StreamOpen):
            self._on_header(event)
        elif isinstance(event, StreamClose):
            self._end_stream(None, "stream closed by client")
        else:
            await self._on_element(event)

    # Stream header and features

    def _on_header(self, header: StreamOpen) -> None:
        self._header_received = True
        to = header.attributes.get("to")
        self._send_header(to=self.ctx.domain if to else None)
        if header.prefix != "stream":
            raise StreamError(
                "bad-namespace-prefix", "The stream element needs the prefix 'stream'"
            )
        if header.default_namespace != ns.CLIENT:
            raise StreamError("invalid-namespace", "The content namespace must be jabber:client")
        if not _version_supported(header.attributes.get("version")):
            raise StreamError("unsupported-version", "Only XMPP version 1.0 is supported")
        if not to:
            raise StreamError("improper-addressing", "The stream header needs a 'to' address")
        try:
            domain = nameprep(to)
        except JIDError:
            domain = None
        if domain != self.ctx.domain:
            raise StreamError("host-unknown", "This server does not serve that domain")
        self.send(self._features())

    def _send_header(self, *, to: str | None) -> None:
        self._writer.write(stream_header(domain=self.ctx.domain, stream_id=self.stream_id, to=to))
        self._header_sent = True

    def _features(self) -> Element:
        features = etree.Element(ns.qname(ns.STREAMS, "features"), nsmap={"stream": ns.STREAMS})
        if self.username is None:
            if not self.tls_active and self.ctx.ssl_context is not None:
                starttls = child(features, "starttls", namespace=ns.TLS)
                if self.ctx.config.tls.required:
                    child(starttls, "required")
            if self.is_secure_enough():
                mechanisms = child(features, "mechanisms", namespace=ns.SASL)
                for name in offered_mechanisms(plain_allowed=True):
                    child(mechanisms, "mechanism", text=name)
            stage = "preauth"
        else:
            child(features, "bind", namespace=ns.BIND)
            session = child(features, "session", namespace=ns.SESSION)
            child(session, "optional")
            stage = "postauth"
        for provider in self.ctx.features[stage]:
            feature = provider(self)
            if feature is not None:
                features.append(feature)
        return features

    def is_secure_enough(self) -> bool:
        """True when the policy allows authentication and registration on this stream."""
        return self.tls_active or not self.ctx.config.tls.required

    # Top-level elements

    async def _on_element(self, node: Element) -> None:
        namespace, name = namespace_of(node), local_name(node)
        if namespace == ns.CLIENT and name in STANZA_KINDS:
            await self._on_stanza(node, name)
        elif namespace == ns.TLS and name == "starttls":
            await self._starttls()
        elif namespace == ns.SASL:
            await self._on_sasl(node, name)
        elif name in STANZA_KINDS:
            raise StreamError("invalid-namespace", "Stanzas must be in the jabber:client namespace")
        else:
            raise StreamError("unsupported-stanza-type", f"Unknown top-level element <{name}/>")

    async def _on_stanza(self, stanza: Element, kind: str) -> None:
        if self.username is None:
            if kind == "iq" and await self.ctx.router.route_preauth(self, stanza):
                return
            raise StreamError("not-authorized", "Authenticate before sending stanzas")
        if self.jid is None:
            await self._before_bind(stanza, kind)
            return
        stanza.set("from", str(self.jid))
        await self.ctx.router.route(self, stanza, kind)

    # STARTTLS

    async def _starttls(self) -> None:
        if self.tls_active or self.username is not None or self.ctx.ssl_context is None:
            self._writer.write(f"<failure xmlns='{ns.TLS}'/>".encode())
            raise StreamError("policy-violation", "STARTTLS is not available at this point")
        self._writer.write(f"<proceed xmlns='{ns.TLS}'/>".encode())
        await self._writer.drain()
        try:
            await self._writer.start_tls(
                self.ctx.ssl_context, ssl_handshake_timeout=self.ctx.config.limits.header_timeout
            )
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            self._closed = True
            raise ConnectionResetError(f"TLS handshake failed: {exc}") from exc
        self.tls_active = True
        self._restart_stream()

    def _restart_stream(self) -> None:
        self._parser = self._new_parser()
        self._header_received = False
        self._header_sent = False
        self._restart = True

    def _new_parser(self) -> StreamParser:
        limits = self.ctx.config.limits
        return StreamParser(
            max_stanza_bytes=(
                limits.max_stanza_bytes if self.username else limits.max_stanza_bytes_preauth
            ),
            max_depth=limits.max_depth,
            max_attributes=limits.max_attributes,
        )

    # SASL

    async def _on_sasl(self, node: Element, name: str) -> None:
        if self.username is not None:
            raise StreamError("policy-violation", "The stream is already authenticated")
        if not self.is_secure_enough():
            self._sasl_reply(SaslStep("failure", condition="encryption-required"))
            return
        if name == "auth":
            mechanism = node.get("mechanism", "")
            if mechanism not in offered_mechanisms(plain_allowed=True):
                self._sasl_reply(SaslStep("failure", condition="invalid-mechanism"))
                return
            self._sasl = SaslExchange(
                mechanism,
                accounts=self.ctx.accounts,
                domain=self.ctx.domain,
                secret=self.ctx.secret,
                iterations=self.ctx.config.auth.scram_iterations,
            )
            try:
                step = await self._sasl.start(_decode_sasl_data(node.text, allow_absent=True))
            except SaslFailure as failure:
                step = SaslStep("failure", condition=failure.condition)
        elif name == "response" and self._sasl is not None:
            try:
                step = await self._sasl.respond(_decode_sasl_data(node.text) or b"")
            except SaslFailure as failure:
                step = SaslStep("failure", condition=failure.condition)
        elif name == "abort":
            step = SaslStep("failure", condition="aborted")
        else:
            step = SaslStep("failure", condition="malformed-request")
        self._sasl_reply(step)

    def _sasl_reply(self, step: SaslStep) -> None:
        if step.kind == "challenge":
            payload = base64.b64encode(step.data).decode() if step.data else ""
            self._writer.write(f"<challenge xmlns='{ns.SASL}'>{payload}</challenge>".encode())
            return
        self._sasl = None
        if step.kind == "success":
            payload = base64.b64encode(step.data).decode() if step.data else ""
            self._writer.write(f"<success xmlns='{ns.SASL}'>{payload}</success>".encode())
            self.username = step.username
            log.info("stream %s authenticated as %s", self.stream_id, self.username)
            self._restart_stream()
            return
        self._writer.write(f"<failure xmlns='{ns.SASL}'><{step.condition}/></failure>".encode())
        if step.condition == "aborted":
            return
        self._auth_failures += 1
        log.warning(
            "authentication failure (%s) for %s from %s",
            step.condition,
            step.attempted_user or "?",
            self.peer,
        )
        if self._auth_failures >= self.ctx.config.auth.max_failures:
            raise StreamError("not-authorized", "Too many failed authentication attempts")

    # Binding

    async def _before_bind(self, stanza: Element, kind: str) -> None:
        payload = next(iter(stanza), None) if kind == "iq" else None
        if payload is not None and payload.tag == BIND_PAYLOAD and stanza.get("type") == "set":
            try:
                self._bind(stanza, payload)
            except StanzaError as error:
                self.ctx.router.send_error(self, stanza, error)
            return
        if stanza.get("type") not in ("error", "result"):
            self.ctx.router.send_error(
                self, stanza, StanzaError("not-authorized", "Bind a resource first")
            )

    def _bind(self, stanza: Element, payload: Element) -> None:
        requested = payload.findtext(ns.qname(ns.BIND, "resource"))
        if requested:
            try:
                resource = resourceprep(requested)
            except JIDError as exc:
                raise StanzaError("bad-request", "That resource is not allowed") from exc
        else:
            resource = secrets.token_hex(6)
        assert self.username is not None
        jid = JID(self.username, self.ctx.domain, resource)
        self.jid = jid
        replaced = self.ctx.sessions.bind(self, jid)
        if replaced is not None:
            replaced.close(StreamError("conflict", "Replaced by a new session for this resource"))
        result = iq_result(stanza)
        result.attrib.pop("from", None)
        bind = child(result, "bind", namespace=ns.BIND)
        child(bind, "jid", text=str(jid))
        self.send(result)
        log.info("stream %s bound %s from %s", self.stream_id, jid, self.peer)

    # Teardown

    async def _teardown(self, reason: str) -> None:
        if self.jid is not None:
            self.ctx.sessions.unbind(self)
            # Later services build on earlier ones, so they let go of a session first.
            for hook in reversed(self.ctx.on_session_end):
                try:
                    await hook(self)
                except Exception:
                    log.exception("session end hook failed for %s", self.jid)
        self._closed = True
        self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await self._writer.wait_closed()
        log.info("stream %s ended: %s", self.stream_id, reason)


def _version_supported(version: str | None) -> bool:
    if not version:
        return False
    major, _, minor = version.partition(".")
    return major.isdigit() and minor.isdigit() and int(major) == 1


def _decode_sasl_data(text: str | None, *, allow_absent: bool = False) -> bytes | None:
    """The base64 payload of a SASL element: None when absent, b'' for '=' (RFC 6120 6.4.2)."""
    text = (text or "").strip()
    if not text:
        return None if allow_absent else b""
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SaslFailure("incorrect-encoding") from exc


def _format_peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
