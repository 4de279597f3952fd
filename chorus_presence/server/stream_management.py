"""Stream management (XEP-0198): per-session counters, the queue of stanzas sent but not yet
acknowledged, and when to ask the client for an acknowledgement. The protocol elements (enable,
r, a, resume) are answered in `session_nonzas`; hibernation itself lives in the c2s stream,
which owns the connection."""

from __future__ import annotations

import secrets
from collections import deque

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.stanza import Element

# Counters wrap at 2^32 (XEP-0198 section 4).
MODULO = 2**32
# The server's request for an acknowledgement.
REQUEST = f"<r xmlns='{ns.SM}'/>".encode()
# How many times max_unacked a hibernating session may hold: room for what arrives while a
# client cut off at the limit reconnects, but not without end.
HIBERNATING_FACTOR = 2


class UnackedOverflow(Exception):
    """More stanzas are waiting for an acknowledgement than the session may keep."""


class StreamManagement:
    def __init__(self, *, resumable: bool, max_unacked: int) -> None:
        self.id = secrets.token_urlsafe(18) if resumable else None
        self.handled_in = 0
        self._sent = 0
        self._max_unacked = max_unacked
        # Ask again each time this many more stanzas wait, so that a client answering as
        # asked never lets the queue reach max_unacked; not on every stanza, which would
        # double the traffic.
        self._request_every = max(1, max_unacked // 4)
        # How many were waiting at the last request still unanswered; None once answered.
        self._requested_at: int | None = None
        self._unacked: deque[tuple[int, bytes]] = deque()

    @property
    def resumable(self) -> bool:
        return self.id is not None

    def received_stanza(self) -> None:
        self.handled_in = (self.handled_in + 1) % MODULO

    def sent_stanza(self, data: bytes, *, connected: bool = True) -> bool:
        """Keep `data` until the client acknowledges it; True when the client should now be
        asked for an acknowledgement (send `REQUEST` after the stanza).

        Raises UnackedOverflow past max_unacked on a connection, and past HIBERNATING_FACTOR
        times that when not `connected` (hibernating), where there is no client to ask. The
        stanza is kept either way, so that it is resent on resumption or given back."""
        self._sent = (self._sent + 1) % MODULO
        self._unacked.append((self._sent, data))
        waiting = len(self._unacked)
        limit = self._max_unacked if connected else HIBERNATING_FACTOR * self._max_unacked
        if waiting > limit:
            raise UnackedOverflow(f"{waiting} stanzas unacknowledged")
        if not connected:
            return False
        since = waiting if self._requested_at is None else waiting - self._requested_at
        if since < self._request_every:
            return False
        self.requested()
        return True

    def requested(self) -> None:
        """The server asked for an acknowledgement (after a stanza, or on resumption)."""
        self._requested_at = len(self._unacked)

    def acknowledged(self, handled: int) -> bool:
        """The client says it handled `handled` stanzas; False when that is impossible."""
        outstanding = (self._sent - handled) % MODULO
        if outstanding > len(self._unacked):
            return False
        while len(self._unacked) > outstanding:
            self._unacked.popleft()
        self._requested_at = None
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
