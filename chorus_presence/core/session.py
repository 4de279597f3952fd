"""What services see of a client connection: a stream before binding, a session after.

The c2s stream and the WebSocket stream implement these; nothing above the stream layer knows
which one it talks to.
"""

from __future__ import annotations

from typing import Protocol

from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element


class Stream(Protocol):
    """A client connection, authenticated or not."""

    @property
    def peer(self) -> str: ...

    def is_secure_enough(self) -> bool:
        """Whether the policy allows authentication and registration on this stream."""
        ...

    def send(self, stanza: Element) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...


class Session(Stream, Protocol):
    """A bound resource: the stream once a client has authenticated and bound a resource."""

    @property
    def jid(self) -> JID:
        """The full JID the session is bound to."""
        ...

    def send_presence(self, data: bytes, sender: str) -> None:
        """A presence update from `sender`, which an inactive client may receive condensed."""
        ...

    def close(self, error: StreamError | None = None) -> None: ...

    def undelivered(self) -> list[bytes]:
        """Stanzas sent but never acknowledged (stream management), for a session that ended."""
        ...
