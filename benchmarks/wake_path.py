"""Where an idle 1 ms ``call_later``'s lateness goes: the kernel's wake-up, then the loop.

For stock asyncio and phaseloop, alternating in one process: ``rounds`` x ``n`` timers
of 1 ms, each set when the previous one fired, as ``latency_call_later_idle`` does. Each
timer's lateness is split at the moment the loop's wait returns:

- *wake - deadline*: how long after the deadline the wait returned (the kernel's timer
  slack, the vCPU's wake-up, and the wait's own rounding);
- *wake -> callback*: from there to the first line of the callback (the loop's code).

The wait's return is stamped by wrapping it: the selector's ``select`` on stock asyncio,
``select.select`` as ``phaseloop.loop`` calls it for short waits on phaseloop (both
private; a diagnostic, not part of ``run.py``'s suite). Usage::

    PYTHONPATH=. python benchmarks/wake_path.py [--rounds 8] [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import phaseloop  # noqa: E402
import phaseloop.loop  # noqa: E402

DELAY = 0.001
_woke = [0.0]


def _stamped(wait: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        result = wait(*args)
        _woke[0] = time.monotonic()
        return result

    return wrapper


def _stock_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    selector: Any = loop._selector  # type: ignore[attr-defined]
    selector.select = _stamped(selector.select)
    return loop


async def _timers(n: int, wake: list[float], path: list[float]) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.01)
    for _ in range(n):
        fired = loop.create_future()
        start = time.monotonic()

        def record(start: float = start, fired: asyncio.Future[None] = fired) -> None:
            now = time.monotonic()
            wake.append(_woke[0] - start - DELAY)
            path.append(now - _woke[0])
            fired.set_result(None)

        loop.call_later(DELAY, record)
        await fired


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    count = len(ordered)
    return " ".join(
        f"{name} {ordered[min(count - 1, int(count * q))] * 1e6:6.1f}"
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("-n", type=int, default=2000, help="timers per round and loop")
    options = parser.parse_args()
    phaseloop.loop._select = _stamped(select.select)  # type: ignore[misc]
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": _stock_loop,
        "phaseloop": phaseloop.new_event_loop,
    }
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in loops}
    for round_number in range(options.rounds):
        names = list(loops) if round_number % 2 == 0 else list(loops)[::-1]
        for name in names:
            loop = loops[name]()
            try:
                loop.run_until_complete(_timers(options.n, *results[name]))
            finally:
                loop.close()
    print(f"Python {sys.version.split()[0]}, {options.rounds} x {options.n} timers of 1 ms per loop, in µs")
    for name, (wake, path) in results.items():
        print(f"{name:10s} wake - deadline: {_percentiles(wake)} | wake -> callback: {_percentiles(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
