"""The wall clocks: the system one runs a callback once its wall time has come, and not once
cancelled; the manual one only when a test advances it, in order of time, and what was
scheduled in the past at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from chorus_presence.core.clock import ManualClock, SystemClock


async def test_the_system_clock_runs_a_callback_at_its_wall_time() -> None:
    clock = SystemClock()
    loop = asyncio.get_running_loop()
    fired: asyncio.Future[float] = loop.create_future()
    cancelled: list[float] = []
    when = clock.now() + 0.05
    clock.call_at(when, lambda: fired.set_result(time.time()))
    clock.call_at(when, lambda: cancelled.append(time.time())).cancel()
    assert await asyncio.wait_for(fired, 5) >= when
    assert cancelled == []


async def test_the_system_clock_runs_what_is_past_at_once() -> None:
    clock = SystemClock()
    fired: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    clock.call_at(clock.now() - 60, lambda: fired.set_result(None))
    await asyncio.wait_for(fired, 5)


async def test_the_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(1000.0)
    order: list[str] = []
    clock.call_at(1010, lambda: order.append("ten"))
    clock.call_at(1005, lambda: order.append("five"))
    clock.call_at(1007, lambda: order.append("seven")).cancel()
    clock.advance(4)
    assert order == [] and clock.now() == 1004
    clock.advance(6)
    assert order == ["five", "ten"]
    past: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    clock.call_at(900, lambda: past.set_result(None))
    await asyncio.wait_for(past, 5)
    with pytest.raises(ValueError):
        clock.advance(-1)
