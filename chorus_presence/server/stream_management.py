"""Stream management (XEP-0198): per-session counters and the queue of stanzas sent but not yet
acknowledged. The protocol elements (enable, r, a, resume) are answered in `session_nonzas`;
hibernation itself lives in the c2s stream, which owns the connection."""

from __future__ import annotations

import secrets
from collections import deque

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.stanza import Element

# Counters wrap at 2^32 (XEP-0198 section 4).
MODULO = 2**32


class UnackedOverflow(Exception):
    """More stanzas are waiting for an acknowledgement than the session may keep."""


class StreamManagement:
    def __init__(self, *, resumable: bool, max_unacked: int) -> None:
        self.id = secrets.token_urlsafe(18) if resumable else None
        self.handled_in = 0
        self._sent = 0
        self._max_unacked = max_unacked
        self._unacked: deque[tuple[int, bytes]] = deque()

    @property
    def resumable(self) -> bool:
        return self.id is not None

    def received_stanza(self) -> None:
        self.handled_in = (self.handled_in + 1) % MODULO

    def sent_stanza(self, data: bytes) -> None:
        self._sent = (self._sent + 1) % MODULO
        self._unacked.append((self._sent, data))
        if len(self._unacked) > self._max_unacked:
            raise UnackedOverflow(f"{len(self._unacked)} stanzas unacknowledged")

    def acknowledged(self, handled: int) -> bool:
        """The client says it handled `handled` stanzas; False when that is impossible."""
        outstanding = (self._sent - handled) % MODULO
        if outstanding > len(self._unacked):
            return False
        while len(self._unacked) > outstanding:
            self._unacked.popleft()
        return True

    @property
    def unacked(self) -> list[bytes]:
        return [data for _, data in self._unacked]

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)


def failed(condition: str) -> bytes:
    return f"<failed xmlns='{ns.SM}'><{condition} xmlns='{ns.STANZA_ERRORS}'/></failed>".encode()


def counter(node: Element) -> int:
    try:
        value = int(node.get("h", ""))
    except ValueError:
        raise StreamError("bad-format", "The 'h' attribute must be a number") from None
    if not 0 <= value < MODULO:
        raise StreamError("bad-format", "The 'h' attribute is out of range")
    return value
