"""The event bus: named topics, handlers with priorities, and a way to stop propagation.

A handler is a plain function or a coroutine function taking the event. Handlers of a topic run
from the highest priority down (equal priorities in the order they were added); the first that
returns something other than None stops the event there, and `fire` returns that value. So a
filter at a high priority stops what must not pass by returning `STOP` (or by raising a
`StanzaError`, which the router turns into the error reply), and the handler that answers a
query returns its answer.

`notify` is for lifecycle events that every subscriber answers for its own data: all handlers
run whatever the others return, and one that fails is logged without keeping the rest from
running.

Topics are strings, by convention `kind/direction/addressing`, as listed in `core.topics`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

# A handler's answer that stops propagation when there is nothing else to say.
STOP: Final = True

Handler = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Subscription:
    priority: int
    order: int
    handler: Handler
    is_async: bool


class Bus:
    def __init__(self) -> None:
        self._topics: dict[str, list[_Subscription]] = {}
        # What `fire` walks: each topic's handlers, sorted, as (handler, is_async) pairs.
        self._chains: dict[str, tuple[tuple[Handler, bool], ...]] = {}
        self._added = 0

    def on(self, topic: str, handler: Handler, priority: int = 0) -> None:
        """Subscribe `handler` to `topic`; higher priorities run first."""
        self._added += 1
        entry = _Subscription(priority, self._added, handler, inspect.iscoroutinefunction(handler))
        subscribed = self._topics.setdefault(topic, [])
        subscribed.append(entry)
        subscribed.sort(key=lambda s: (-s.priority, s.order))
        self._chains[topic] = tuple((s.handler, s.is_async) for s in subscribed)

    def off(self, topic: str, handler: Handler) -> None:
        subscribed = [s for s in self._topics.get(topic, []) if s.handler != handler]
        if subscribed:
            self._topics[topic] = subscribed
            self._chains[topic] = tuple((s.handler, s.is_async) for s in subscribed)
        else:
            self._topics.pop(topic, None)
            self._chains.pop(topic, None)

    def has(self, topic: str) -> bool:
        return topic in self._chains

    async def fire(self, topic: str, event: object) -> Any:
        """Run the topic's handlers until one returns something; that value, or None."""
        for handler, is_async in self._chains.get(topic, ()):
            result = await handler(event) if is_async else handler(event)
            if result is not None:
                return result
        return None

    def fire_sync(self, topic: str, event: object) -> Any:
        """`fire` for topics whose handlers are all plain functions (the presence path)."""
        for handler, is_async in self._chains.get(topic, ()):
            if is_async:
                raise TypeError(f"{topic} has a coroutine handler; use fire")
            result = handler(event)
            if result is not None:
                return result
        return None

    async def notify(self, topic: str, event: object) -> None:
        """Run every handler of a lifecycle topic; a failing one is logged, the rest still run."""
        for handler, is_async in self._chains.get(topic, ()):
            try:
                result = handler(event)
                if is_async:
                    await result
            except Exception:
                log.exception("%s handler %s failed", topic, _name(handler))

    def notify_sync(self, topic: str, event: object) -> None:
        for handler, is_async in self._chains.get(topic, ()):
            if is_async:
                raise TypeError(f"{topic} has a coroutine handler; use notify")
            try:
                handler(event)
            except Exception:
                log.exception("%s handler %s failed", topic, _name(handler))


def _name(handler: Callable[..., object] | Callable[..., Awaitable[object]]) -> str:
    return getattr(handler, "__qualname__", repr(handler))
