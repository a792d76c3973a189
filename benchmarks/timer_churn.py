"""What set/clear cycles of one Node timer leave behind: list-queue entries and traced memory.

    PYTHONPATH=. python benchmarks/timer_churn.py [-n N] [--delay MS]

The pattern is a keep-alive or request timeout cleared before it fires, one at a time:
``clear_timeout(set_timeout(cb, delay))``, ``n`` times, from ``phaseloop.node.run``'s
main script, once with ref'd timers and once with unref'd ones (each in a process of
its own). Clearing a ref'd timer empties its list, which Node drops at once; phaseloop
leaves the list's queue entry and skips it later, and rebuilds the queue once such
entries outnumber the lists. An unref'd timer's list stays (Node's ``unenroll``), so
the next timer of the same duration joins it. Reports the time per cycle, and, from a
second run of the cycles under ``tracemalloc``, the entries left in the list queue, the
lists, and the memory still allocated.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tracemalloc
from typing import Any


def _noop() -> None:
    pass


def _cycles(n: int, delay: int, unref: bool) -> None:
    from phaseloop import node

    for _ in range(n):
        timer = node.set_timeout(_noop, delay)
        if unref:
            timer.unref()
        node.clear_timeout(timer)


def _churn(n: int, delay: int, unref: bool) -> str:
    """One loop times the cycles; a second one counts what they left, under ``tracemalloc``."""
    from asyncio import events

    from phaseloop import node

    report: list[str] = []

    def timed() -> None:
        start = time.perf_counter()
        _cycles(n, delay, unref)
        report.append(f"{(time.perf_counter() - start) / n * 1e6:.2f} us/cycle")

    def traced() -> None:
        timers: Any = events._get_running_loop()._node_timers  # type: ignore[union-attr]
        tracemalloc.start()
        _cycles(n, delay, unref)
        left = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        kind = "unref'd" if unref else "ref'd"
        report.insert(
            0,
            f"{kind}: {len(timers._queue)} queue entries, {len(timers._lists)} lists, "
            f"{left / 1024:.0f} KiB traced ({left / n:.1f} bytes/cycle),",
        )

    node.run(timed)
    node.run(traced)
    return " ".join(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="set/clear cycles (default 100000)")
    parser.add_argument("--delay", type=int, default=30_000, help="the timer's delay in ms (default 30000)")
    parser.add_argument("--child", choices=["ref", "unref"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(_churn(args.n, args.delay, args.child == "unref"))
        return
    print(f"{args.n} x clear_timeout(set_timeout(cb, {args.delay})), Python {sys.version.split()[0]}")
    for kind in ("ref", "unref"):
        command = [sys.executable, __file__, "-n", str(args.n), "--delay", str(args.delay), "--child", kind]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
