"""Client state indication (XEP-0352): while a client says it is inactive, presence updates
for it wait, condensed to the latest one per sender, until something important arrives or the
client becomes active again. The `<active/>` and `<inactive/>` elements are answered in
`session_nonzas`."""

from __future__ import annotations


class ClientState:
    # One per stream: no instance dict.
    __slots__ = ("_held", "active")

    def __init__(self) -> None:
        self.active = True
        self._held: dict[str, bytes] = {}

    def hold(self, sender: str, data: bytes) -> bool:
        """Keep a presence update instead of sending it; False when the client is active."""
        if self.active:
            return False
        # Re-inserting moves the sender to the end, so updates flush in the order they came.
        self._held.pop(sender, None)
        self._held[sender] = data
        return True

    def release(self) -> list[bytes]:
        """Everything held, in order; called before anything important is sent."""
        held = list(self._held.values())
        self._held.clear()
        return held

    @property
    def held_count(self) -> int:
        return len(self._held)
