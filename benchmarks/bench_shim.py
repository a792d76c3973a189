"""Per-``yield`` cost of the generator shim against ``async def`` doing the same awaits.

    python benchmarks/bench_shim.py [--quick]

For each loop (asyncio, uvloop, phaseloop) and each kind of await, one coroutine does
N awaits in a row, timed inside the coroutine (so loop start-up is not counted); the best
of several rounds is reported as nanoseconds per await:

- ``done future``: ``await fut`` / ``yield fut`` on a resolved future: no suspension, so
  this is the shim's own bookkeeping per ``yield``;
- ``coroutine``: ``await f()`` / ``yield f()`` on an ``async def`` that returns at once;
- ``sleep(0)``: ``await asyncio.sleep(0)`` / a bare ``yield``: one loop iteration each.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

try:
    import phaseloop
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import phaseloop

from phaseloop.shim import coroutine

try:
    import uvloop
except ImportError:
    uvloop = None  # type: ignore[assignment]


async def nothing() -> None:
    return None


# --- native ---------------------------------------------------------------------------


async def native_done_future(n: int) -> int:
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    start = time.perf_counter_ns()
    for _ in range(n):
        await fut
    return time.perf_counter_ns() - start


async def native_coroutine(n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        await nothing()
    return time.perf_counter_ns() - start


async def native_sleep0(n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.sleep(0)
    return time.perf_counter_ns() - start


# --- shim -----------------------------------------------------------------------------


@coroutine
def shim_done_future(n: int) -> Generator[Any, Any, int]:
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    start = time.perf_counter_ns()
    for _ in range(n):
        yield fut
    return time.perf_counter_ns() - start


@coroutine
def shim_coroutine(n: int) -> Generator[Any, Any, int]:
    start = time.perf_counter_ns()
    for _ in range(n):
        yield nothing()
    return time.perf_counter_ns() - start


@coroutine
def shim_sleep0(n: int) -> Generator[Any, Any, int]:
    start = time.perf_counter_ns()
    for _ in range(n):
        yield
    return time.perf_counter_ns() - start


Bench = Callable[[int], Coroutine[Any, Any, int]]
CASES: list[tuple[str, Bench, Bench, int]] = [
    # name, native, shim, awaits per round (full run)
    ("done future", native_done_future, shim_done_future, 200_000),
    ("coroutine", native_coroutine, shim_coroutine, 200_000),
    ("sleep(0)", native_sleep0, shim_sleep0, 50_000),
]


def best_ns_per_await(
    factory: Callable[[], asyncio.AbstractEventLoop], native: Bench, shim: Bench, n: int, rounds: int
) -> tuple[float, float]:
    """Best-of-rounds ns per await for native and shim, alternating so drift hits both."""
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(native(n // 10))  # warm up
        runner.run(shim(n // 10))
        native_ns = shim_ns = float("inf")
        for _ in range(rounds):
            native_ns = min(native_ns, runner.run(native(n)) / n)
            shim_ns = min(shim_ns, runner.run(shim(n)) / n)
    return native_ns, shim_ns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer awaits and rounds (a smoke run)")
    options = parser.parse_args()
    scale, rounds = (50, 3) if options.quick else (1, 7)

    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]] = [("asyncio", asyncio.new_event_loop)]
    if uvloop is not None:
        loops.append(("uvloop", uvloop.new_event_loop))
    loops.append(("phaseloop", phaseloop.new_event_loop))

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.machine()}")
    print(f"{sys.executable} {' '.join(sys.argv)}")
    print()
    print(f"{'loop':<10} {'await':<12} {'native ns':>10} {'shim ns':>10} {'ratio':>7} {'+ns/yield':>10}")
    for loop_name, factory in loops:
        for case, native, shim, n in CASES:
            n = max(n // scale, 100)
            native_ns, shim_ns = best_ns_per_await(factory, native, shim, n, rounds)
            print(
                f"{loop_name:<10} {case:<12} {native_ns:>10.0f} {shim_ns:>10.0f}"
                f" {shim_ns / native_ns:>6.2f}x {shim_ns - native_ns:>10.0f}"
            )


if __name__ == "__main__":
    main()
