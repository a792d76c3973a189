"""pyperformance-style ``async_tree``: a tree of ``gather`` calls, ``depth`` levels of 6 branches.

Each inner node gathers 6 children (one task each); the leaves do nothing, yield one
iteration with ``sleep(0)``, or wait for a future resolved by a ``call_soon`` callback.
pyperformance's own version sleeps 50 ms in the leaves; these leaves keep the loop,
not the clock, as the thing measured. ``tree_eager_sleep0`` runs with asyncio's eager
task factory (Python 3.12+), where a child runs synchronously until its first wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench_measure import (
    SCATTER_REPS,
    Benchmark,
    Measured,
    NewLoop,
    Unsupported,
    peak_rss_mib,
    per_op_us,
    run_on,
    sizes,
)

BRANCHES = 6
Leaf = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


async def _sleep0() -> None:
    await asyncio.sleep(0)


async def _future() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(future.set_result, None)
    await future


async def _tree(depth: int, leaf: Leaf) -> None:
    if depth == 0:
        await leaf()
        return
    await asyncio.gather(*[_tree(depth - 1, leaf) for _ in range(BRANCHES)])


async def _timed_tree(depth: int, leaf: Leaf, eager: bool) -> float:
    if eager:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        probe = _nothing()
        try:
            await loop.create_task(probe)
        except TypeError as exc:  # uvloop 0.23 on 3.13 passes eager_start= to the factory
            probe.close()
            loop.set_task_factory(None)
            raise Unsupported(f"{type(loop).__module__} rejects eager_task_factory: {exc}") from exc
    start = time.perf_counter()
    await _tree(depth, leaf)
    return time.perf_counter() - start


def _tasks(depth: int) -> int:
    return sum(BRANCHES**level for level in range(1, depth + 1))


def _tree_benchmark(leaf: Leaf, eager: bool = False) -> Callable[[NewLoop, int], Measured]:
    def bench(new_loop: NewLoop, depth: int) -> Measured:
        run_on(new_loop, lambda: _timed_tree(max(1, depth - 2), leaf, eager))
        seconds = run_on(new_loop, lambda: _timed_tree(depth, leaf, eager))
        return Measured(
            {"us/task": per_op_us(seconds, _tasks(depth)), "peak RSS MiB": peak_rss_mib()},
            {"tasks": _tasks(depth), "depth": depth, "branches": BRANCHES},
        )

    return bench


def tree_none(new_loop: NewLoop, depth: int) -> Measured:
    """A gather tree whose leaves return at once."""
    return _tree_benchmark(_nothing)(new_loop, depth)


def tree_sleep0(new_loop: NewLoop, depth: int) -> Measured:
    """A gather tree whose leaves ``await asyncio.sleep(0)``."""
    return _tree_benchmark(_sleep0)(new_loop, depth)


def tree_future(new_loop: NewLoop, depth: int) -> Measured:
    """A gather tree whose leaves await a future resolved by ``call_soon``."""
    return _tree_benchmark(_future)(new_loop, depth)


def tree_eager_sleep0(new_loop: NewLoop, depth: int) -> Measured:
    """A gather tree with leaves ``await asyncio.sleep(0)``, under ``eager_task_factory`` (3.12+)."""
    return _tree_benchmark(_sleep0, eager=True)(new_loop, depth)


BENCHMARKS = [
    Benchmark("tree_none", tree_none, sizes(6, 5, 2), full_reps=SCATTER_REPS),
    Benchmark("tree_sleep0", tree_sleep0, sizes(6, 5, 2), full_reps=SCATTER_REPS),
    Benchmark("tree_future", tree_future, sizes(6, 5, 2), full_reps=SCATTER_REPS),
    Benchmark(
        "tree_eager_sleep0", tree_eager_sleep0, sizes(6, 5, 2), min_python=(3, 12), full_reps=SCATTER_REPS
    ),
]
