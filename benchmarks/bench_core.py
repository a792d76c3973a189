"""Scheduling benchmarks: call_soon, timers, futures, sleep(0), tasks (any asyncio loop).

Each function times its workload from inside a running loop, so loop creation,
imports and interpreter start-up are not counted; a tenth-size warm-up runs first.
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import time

from bench_measure import SCATTER_REPS, Benchmark, Measured, NewLoop, peak_rss_mib, per_op_us, run_on, sizes


def _noop() -> None:
    pass


# --- call_soon ------------------------------------------------------------------------


async def _call_soon(n: int) -> float:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0

    def callback() -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    start = time.perf_counter()
    for _ in range(n):
        loop.call_soon(callback)
    await done
    return time.perf_counter() - start


async def _handle_size() -> int:
    handle = asyncio.get_running_loop().call_soon(_noop)
    handle.cancel()
    return sys.getsizeof(handle)


def call_soon(new_loop: NewLoop, n: int) -> Measured:
    """``n`` ``call_soon`` callbacks queued in one go from a task, then run."""
    run_on(new_loop, lambda: _call_soon(max(1, n // 10)))
    seconds = run_on(new_loop, lambda: _call_soon(n))
    return Measured({"us/callback": per_op_us(seconds, n)}, {"sizeof Handle": run_on(new_loop, _handle_size)})


# --- timers ---------------------------------------------------------------------------


async def _timers_pending(n: int, spins: int) -> tuple[float, float, int]:
    loop = asyncio.get_running_loop()
    rng = random.Random(42)
    start = time.perf_counter()
    handles = [loop.call_later(1000 + rng.random() * 1000, _noop) for _ in range(n)]
    for handle in handles[::2]:
        handle.cancel()
    scheduled = time.perf_counter() - start
    # The loop's per-iteration cost while n/2 far timers are pending; collected first,
    # so that a garbage collection of the 100k new objects is not what gets timed.
    gc.collect()
    start = time.perf_counter()
    for _ in range(spins):
        await asyncio.sleep(0)
    spinning = time.perf_counter() - start
    for handle in handles[1::2]:
        handle.cancel()
    return scheduled, spinning, sys.getsizeof(handles[0])


def timers_pending(new_loop: NewLoop, n: int) -> Measured:
    """``n`` ``call_later`` timers far in the future, half cancelled; then sleep(0) with n/2 pending."""
    spins = max(10, n // 10)
    run_on(new_loop, lambda: _timers_pending(max(1, n // 10), 10))
    scheduled, spinning, size = run_on(new_loop, lambda: _timers_pending(n, spins))
    return Measured(
        {
            "us/timer (schedule, cancel half)": per_op_us(scheduled, n),
            f"us/sleep(0) with {n // 2} pending": per_op_us(spinning, spins),
            "peak RSS MiB": peak_rss_mib(),
        },
        {"sizeof TimerHandle": size, "pending timers": n // 2},
    )


async def _timers_fire(n: int) -> float:
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    remaining = (n + 1) // 2
    done = loop.create_future()

    def fire() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            done.set_result(None)

    start = time.perf_counter()
    handles = [loop.call_later(rng.random() * 0.02, fire) for _ in range(n)]
    for handle in handles[1::2]:
        handle.cancel()
    await done
    return time.perf_counter() - start


def timers_fire(new_loop: NewLoop, n: int) -> Measured:
    """``n`` ``call_later`` timers due within 20 ms, every other one cancelled; until the rest fired."""
    run_on(new_loop, lambda: _timers_fire(max(2, n // 10)))
    seconds = run_on(new_loop, lambda: _timers_fire(n))
    return Measured({"us/timer (incl. <=20 ms wait)": per_op_us(seconds, n)})


# --- futures and tasks ----------------------------------------------------------------


async def _ping_pong(n: int) -> float:
    loop = asyncio.get_running_loop()
    box = [loop.create_future(), loop.create_future()]  # [ping, pong]

    async def ponger() -> None:
        for _ in range(n):
            await box[0]
            box[0] = loop.create_future()
            box[1].set_result(None)

    async def pinger() -> None:
        for _ in range(n):
            box[0].set_result(None)
            await box[1]
            box[1] = loop.create_future()

    start = time.perf_counter()
    await asyncio.gather(ponger(), pinger())
    return time.perf_counter() - start


def future_ping_pong(new_loop: NewLoop, n: int) -> Measured:
    """Two tasks hand a future back and forth ``n`` times (two wake-ups per round trip)."""
    run_on(new_loop, lambda: _ping_pong(max(1, n // 10)))
    seconds = run_on(new_loop, lambda: _ping_pong(n))
    return Measured({"us/round trip": per_op_us(seconds, n)})


async def _sleep0_tasks(n: int, tasks: int) -> float:
    each = max(1, n // tasks)

    async def spin() -> None:
        for _ in range(each):
            await asyncio.sleep(0)

    start = time.perf_counter()
    await asyncio.gather(*[spin() for _ in range(tasks)])
    return time.perf_counter() - start


def sleep0_100_tasks(new_loop: NewLoop, n: int) -> Measured:
    """100 tasks each ``await asyncio.sleep(0)`` n/100 times."""
    run_on(new_loop, lambda: _sleep0_tasks(max(100, n // 10), 100))
    seconds = run_on(new_loop, lambda: _sleep0_tasks(n, 100))
    return Measured({"us/sleep(0)": per_op_us(seconds, max(1, n // 100) * 100)})


async def _leaf() -> int:
    return 1


async def _create_gather(n: int) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    tasks = [loop.create_task(_leaf()) for _ in range(n)]
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - start
    return seconds, sys.getsizeof(tasks[0])


def task_gather(new_loop: NewLoop, n: int) -> Measured:
    """``n`` tasks created at once with ``create_task``, then gathered."""
    run_on(new_loop, lambda: _create_gather(max(1, n // 10)))
    seconds, size = run_on(new_loop, lambda: _create_gather(n))
    return Measured({"us/task": per_op_us(seconds, n), "peak RSS MiB": peak_rss_mib()}, {"sizeof Task": size})


BENCHMARKS = [
    Benchmark("call_soon", call_soon, sizes(400_000, 200_000, 2_000)),
    Benchmark("timers_pending", timers_pending, sizes(200_000, 100_000, 2_000), full_reps=SCATTER_REPS),
    Benchmark("timers_fire", timers_fire, sizes(200_000, 100_000, 2_000)),
    Benchmark("future_ping_pong", future_ping_pong, sizes(100_000, 50_000, 1_000)),
    Benchmark("sleep0_100_tasks", sleep0_100_tasks, sizes(200_000, 100_000, 1_000)),
    Benchmark("task_gather", task_gather, sizes(100_000, 50_000, 1_000), full_reps=SCATTER_REPS),
]
