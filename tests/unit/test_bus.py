"""The event bus: handler order by priority, propagation stopped by the first answer, the
synchronous variants' refusal of coroutine handlers, lifecycle notification that survives a
failing handler, and unsubscribing."""

from __future__ import annotations

import logging

import pytest

from chorus_presence.core.bus import STOP, Bus, Handler

TOPIC = "test/topic"


def recorder(calls: list[str], name: str, answer: object = None) -> Handler:
    """A plain handler that notes its name and gives `answer`."""

    def handler(_event: object) -> object:
        calls.append(name)
        return answer

    handler.__qualname__ = name
    return handler


def async_recorder(calls: list[str], name: str, answer: object = None) -> Handler:
    async def handler(_event: object) -> object:
        calls.append(name)
        return answer

    handler.__qualname__ = name
    return handler


async def test_higher_priorities_run_first() -> None:
    bus = Bus()
    calls: list[str] = []
    # Subscribed out of order on purpose: the order of `on` calls must not decide.
    bus.on(TOPIC, recorder(calls, "low"), priority=-5)
    bus.on(TOPIC, recorder(calls, "high"), priority=10)
    bus.on(TOPIC, recorder(calls, "default"))
    bus.on(TOPIC, recorder(calls, "highest"), priority=500)
    assert await bus.fire(TOPIC, object()) is None
    assert calls == ["highest", "high", "default", "low"]


async def test_equal_priorities_keep_the_order_they_were_added_in() -> None:
    bus = Bus()
    calls: list[str] = []
    for name in ("first", "second", "third"):
        bus.on(TOPIC, recorder(calls, name), priority=7)
    # One with another priority in between must not disturb the others' relative order.
    bus.on(TOPIC, recorder(calls, "above"), priority=8)
    bus.on(TOPIC, recorder(calls, "fourth"), priority=7)
    await bus.fire(TOPIC, object())
    assert calls == ["above", "first", "second", "third", "fourth"]


async def test_the_first_answer_other_than_none_stops_and_is_returned() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "passes"), priority=2)
    bus.on(TOPIC, async_recorder(calls, "answers", answer="the answer"), priority=1)
    bus.on(TOPIC, recorder(calls, "never"), priority=0)
    assert await bus.fire(TOPIC, object()) == "the answer"
    assert calls == ["passes", "answers"]


async def test_a_falsy_answer_still_stops() -> None:
    # Only None means "not mine": 0, "" or False are answers like any other.
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "zero", answer=0), priority=1)
    bus.on(TOPIC, recorder(calls, "never"))
    assert await bus.fire(TOPIC, object()) == 0
    assert calls == ["zero"]


async def test_stop_keeps_lower_handlers_from_running() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "filter", answer=STOP), priority=500)
    bus.on(TOPIC, recorder(calls, "service"))
    assert await bus.fire(TOPIC, object()) is STOP
    assert bus.fire_sync(TOPIC, object()) is STOP
    assert calls == ["filter", "filter"]


async def test_handlers_receive_the_event_and_may_change_it() -> None:
    bus = Bus()
    seen: list[object] = []
    event: dict[str, int] = {"count": 0}

    def first(e: dict[str, int]) -> None:
        e["count"] += 1

    async def second(e: dict[str, int]) -> None:
        seen.append(dict(e))

    bus.on(TOPIC, first, priority=1)
    bus.on(TOPIC, second)
    await bus.fire(TOPIC, event)
    assert seen == [{"count": 1}]


async def test_an_unknown_topic_fires_nothing() -> None:
    bus = Bus()
    assert not bus.has(TOPIC)
    assert await bus.fire(TOPIC, object()) is None
    assert bus.fire_sync(TOPIC, object()) is None
    await bus.notify(TOPIC, object())
    bus.notify_sync(TOPIC, object())


def test_fire_sync_runs_plain_handlers_in_order() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "b"))
    bus.on(TOPIC, recorder(calls, "a", answer="answer"), priority=1)
    assert bus.fire_sync(TOPIC, object()) == "answer"
    assert calls == ["a"]


def test_fire_sync_refuses_a_coroutine_handler() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "plain"), priority=1)
    bus.on(TOPIC, async_recorder(calls, "coroutine"))
    with pytest.raises(TypeError, match="coroutine handler"):
        bus.fire_sync(TOPIC, object())
    # The coroutine was never created, so nothing is left un-awaited.
    assert calls == ["plain"]


def test_notify_sync_refuses_a_coroutine_handler() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, async_recorder(calls, "coroutine"))
    with pytest.raises(TypeError, match="use notify"):
        bus.notify_sync(TOPIC, object())
    assert calls == []


async def test_notify_runs_every_handler_whatever_they_answer() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "answers", answer=STOP), priority=2)
    bus.on(TOPIC, async_recorder(calls, "async answers", answer="yes"), priority=1)
    bus.on(TOPIC, recorder(calls, "last"))
    await bus.notify(TOPIC, object())
    assert calls == ["answers", "async answers", "last"]


async def test_notify_logs_a_failing_handler_and_runs_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = Bus()
    calls: list[str] = []

    def broken(_event: object) -> None:
        calls.append("broken")
        raise RuntimeError("plain handler broke")

    async def broken_async(_event: object) -> None:
        calls.append("broken async")
        raise ValueError("coroutine handler broke")

    bus.on(TOPIC, recorder(calls, "before"), priority=3)
    bus.on(TOPIC, broken, priority=2)
    bus.on(TOPIC, broken_async, priority=1)
    bus.on(TOPIC, recorder(calls, "after"))
    with caplog.at_level(logging.ERROR, logger="chorus_presence.core.bus"):
        await bus.notify(TOPIC, object())
    assert calls == ["before", "broken", "broken async", "after"]
    records = [r for r in caplog.records if r.name == "chorus_presence.core.bus"]
    assert len(records) == 2
    for record, handler, error in zip(
        records, (broken, broken_async), (RuntimeError, ValueError), strict=True
    ):
        assert record.levelno == logging.ERROR
        # The log names the topic and the handler, and carries the traceback.
        assert TOPIC in record.getMessage()
        assert handler.__qualname__ in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is error


def test_notify_sync_logs_a_failing_handler_and_runs_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = Bus()
    calls: list[str] = []

    def broken(_event: object) -> None:
        raise KeyError("gone")

    bus.on(TOPIC, broken, priority=1)
    bus.on(TOPIC, recorder(calls, "after"))
    with caplog.at_level(logging.ERROR, logger="chorus_presence.core.bus"):
        bus.notify_sync(TOPIC, object())
    assert calls == ["after"]
    [record] = [r for r in caplog.records if r.name == "chorus_presence.core.bus"]
    assert record.exc_info is not None and record.exc_info[0] is KeyError


async def test_off_removes_only_that_handler_from_that_topic() -> None:
    bus = Bus()
    calls: list[str] = []
    gone, kept = recorder(calls, "gone"), recorder(calls, "kept")
    bus.on(TOPIC, gone, priority=1)
    bus.on(TOPIC, kept)
    bus.on("other/topic", gone)
    bus.off(TOPIC, gone)
    await bus.fire(TOPIC, object())
    assert calls == ["kept"]
    # The same handler stays subscribed elsewhere.
    await bus.fire("other/topic", object())
    assert calls == ["kept", "gone"]


async def test_off_of_the_last_handler_empties_the_topic() -> None:
    bus = Bus()
    calls: list[str] = []
    handler = recorder(calls, "only")
    bus.on(TOPIC, handler)
    assert bus.has(TOPIC)
    bus.off(TOPIC, handler)
    assert not bus.has(TOPIC)
    await bus.fire(TOPIC, object())
    assert calls == []
    # Subscribing again works as from scratch.
    bus.on(TOPIC, handler)
    await bus.fire(TOPIC, object())
    assert calls == ["only"]


def test_off_of_a_handler_never_added_changes_nothing() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.on(TOPIC, recorder(calls, "kept"))
    bus.off(TOPIC, recorder(calls, "stranger"))
    bus.off("no/such/topic", recorder(calls, "stranger"))
    assert bus.has(TOPIC) and not bus.has("no/such/topic")
    bus.fire_sync(TOPIC, object())
    assert calls == ["kept"]
