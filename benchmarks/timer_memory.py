"""Bytes per pending ``call_later`` timer, on any loops, counted by ``tracemalloc``.

    PYTHONPATH=. python benchmarks/timer_memory.py [--loops MODULE:FACTORY,...] [-n N]

Schedules ``n`` timers far in the future (``timers_pending``'s deadlines), from a task
whose context holds no variable, and reports what ``tracemalloc`` saw allocated per
timer: the handle, its deadline float, its context, the loop's heap and maps, and the
caller's list of handles (8 bytes, alike for every loop). ``run.py``'s peak RSS row is
the same workload seen from outside the process, with the interpreter around it.
Each loop runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import random
import subprocess
import sys
import tracemalloc

DEFAULT_LOOPS = "asyncio:new_event_loop,uvloop:new_event_loop,phaseloop:new_event_loop"


def _noop() -> None:
    pass


async def _bytes_per_timer(n: int) -> float:
    loop = asyncio.get_running_loop()
    rng = random.Random(42)
    tracemalloc.start()
    try:
        handles = [loop.call_later(1000 + rng.random() * 1000, _noop) for _ in range(n)]
        allocated = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    for handle in handles:
        handle.cancel()
    return allocated / n


def _child(spec: str, n: int) -> None:
    module, _, factory = spec.partition(":")
    new_loop = getattr(importlib.import_module(module), factory or "new_event_loop")
    with asyncio.Runner(loop_factory=new_loop) as runner:
        print(f"{spec}: {runner.run(_bytes_per_timer(n)):.1f} bytes per pending timer ({n} timers)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", default=DEFAULT_LOOPS, help="comma-separated MODULE:FACTORY")
    parser.add_argument("-n", type=int, default=100_000, help="timers (default 100000)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n)
        return 0
    failed = 0
    for spec in args.loops.split(","):
        done = subprocess.run([sys.executable, __file__, "--child", spec, "-n", str(args.n)], check=False)
        failed |= done.returncode
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
