"""Timer lateness: how long after its deadline a 1 ms timer runs, on an idle loop and under load.

``n`` timers one after another (each set when the previous one fired): lateness is
the fresh ``time.monotonic()`` in the callback minus (the fresh time when it was set
+ 1 ms). "load" is 100 tasks looping on ``await asyncio.sleep(0)`` meanwhile.
``latency_call_later_1_5ms_idle`` does the same with a 1.5 ms delay: a 1 ms delay
happens to suit epoll_wait's whole milliseconds, most delays do not.
``call_later`` runs on every loop; ``phaseloop.node.set_timeout`` on phaseloop, with
``benchmarks/node/latency.js`` as the Node.js reference.

uvloop (libuv) computes deadlines from the time cached at the start of the
iteration, so its timers can fire slightly *before* fresh-time + 1 ms: its lateness
can be negative.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

from bench_measure import SCATTER_REPS, Benchmark, Measured, NewLoop, percentile, run_on, sizes

SPINNERS = 100
DELAY = 0.001
# A delay that is not a whole number of milliseconds, as most are in real code: a loop
# that waits in epoll_wait's whole milliseconds, rounded up, runs it up to 1 ms late.
FRACTION_DELAY = 0.0015
Schedule = Callable[[asyncio.AbstractEventLoop, Callable[[], None], float], object]


def _call_later(loop: asyncio.AbstractEventLoop, callback: Callable[[], None], delay: float) -> object:
    return loop.call_later(delay, callback)


def _set_timeout(loop: asyncio.AbstractEventLoop, callback: Callable[[], None], delay: float) -> object:
    from phaseloop import node

    return node.set_timeout(callback, delay * 1000)


def _record(lateness: list[float], start: float, fired: asyncio.Future[None], delay: float) -> None:
    lateness.append(time.monotonic() - start - delay)
    fired.set_result(None)


async def _lateness(schedule: Schedule, n: int, load: bool, delay: float) -> list[float]:
    loop = asyncio.get_running_loop()
    spinning = True

    async def spin() -> None:
        while spinning:
            await asyncio.sleep(0)

    spinners = [loop.create_task(spin()) for _ in range(SPINNERS if load else 0)]
    await asyncio.sleep(0.01)
    lateness: list[float] = []
    for _ in range(n):
        fired = loop.create_future()
        schedule(loop, functools.partial(_record, lateness, time.monotonic(), fired, delay), delay)
        await fired
    spinning = False
    await asyncio.gather(*spinners)
    return lateness


def _latency_benchmark(
    schedule: Schedule, load: bool, delay: float = DELAY
) -> Callable[[NewLoop, int], Measured]:
    def bench(new_loop: NewLoop, n: int) -> Measured:
        lateness = sorted(run_on(new_loop, lambda: _lateness(schedule, n, load, delay)))
        return Measured(
            {"p50 ms": percentile(lateness, 0.5) * 1e3, "p99 ms": percentile(lateness, 0.99) * 1e3},
            {"samples": n, "max ms": lateness[-1] * 1e3},
        )

    return bench


def call_later_idle(new_loop: NewLoop, n: int) -> Measured:
    """``call_later(0.001)`` lateness on an idle loop."""
    return _latency_benchmark(_call_later, load=False)(new_loop, n)


def call_later_load(new_loop: NewLoop, n: int) -> Measured:
    """``call_later(0.001)`` lateness while 100 tasks spin on ``sleep(0)``."""
    return _latency_benchmark(_call_later, load=True)(new_loop, n)


def call_later_fraction_idle(new_loop: NewLoop, n: int) -> Measured:
    """``call_later(0.0015)`` lateness on an idle loop: a delay between two milliseconds."""
    return _latency_benchmark(_call_later, load=False, delay=FRACTION_DELAY)(new_loop, n)


def set_timeout_idle(new_loop: NewLoop, n: int) -> Measured:
    """``phaseloop.node.set_timeout(cb, 1)`` lateness on an idle loop."""
    return _latency_benchmark(_set_timeout, load=False)(new_loop, n)


def set_timeout_load(new_loop: NewLoop, n: int) -> Measured:
    """``phaseloop.node.set_timeout(cb, 1)`` lateness while 100 tasks spin on ``sleep(0)``."""
    return _latency_benchmark(_set_timeout, load=True)(new_loop, n)


BENCHMARKS = [
    Benchmark("latency_call_later_idle", call_later_idle, sizes(1000, 300, 20), full_reps=SCATTER_REPS),
    Benchmark("latency_call_later_load", call_later_load, sizes(1000, 300, 20)),
    Benchmark("latency_call_later_1_5ms_idle", call_later_fraction_idle, sizes(1000, 300, 20)),
    Benchmark(
        "latency_set_timeout_idle",
        set_timeout_idle,
        sizes(1000, 300, 20),
        phaseloop_only=True,
        node=("latency.js", "idle"),
    ),
    Benchmark(
        "latency_set_timeout_load",
        set_timeout_load,
        sizes(1000, 300, 20),
        phaseloop_only=True,
        node=("latency.js", "load"),
    ),
]
