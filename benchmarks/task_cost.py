"""Where a gather tree's time goes: the garbage collector, and the rest (the C Task, gather, the loop).

Runs ``run.py``'s tree benchmark (``bench_tree``: depth 6, 6 branches, 55 986 tasks) on
each loop, alternating in one process, once with the garbage collector on and once
with it disabled, and prints per task: the time with the collector, the collector's
share of it (timed by ``gc.callbacks``), the time without it, and the collections
run. Both loops run the same C ``Task``, coroutines and ``gather``; what differs
without the collector is mostly the loop's own code (``create_task``, ``call_soon``,
running the callbacks), and uvloop, whose loop is C, shows how small that part can
get. A diagnostic for ``docs/performance.md``, not part of ``run.py``'s suite::

    PYTHONPATH=. python benchmarks/task_cost.py [--leaf none|sleep0|future] [--rounds 7]
        [--loops MODULE:FACTORY,...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_tree  # noqa: E402

DEFAULT_LOOPS = "asyncio:new_event_loop,uvloop:new_event_loop,phaseloop:new_event_loop"
LEAVES = {"none": bench_tree._nothing, "sleep0": bench_tree._sleep0, "future": bench_tree._future}
_collecting = [0.0, 0.0]  # the current collection's start, the total so far


def _time_collections(phase: str, _info: dict[str, Any]) -> None:
    if phase == "start":
        _collecting[0] = time.perf_counter()
    else:
        _collecting[1] += time.perf_counter() - _collecting[0]


def _one_run(
    new_loop: Callable[[], asyncio.AbstractEventLoop], depth: int, leaf: Any, collector: bool
) -> list[float]:
    """µs per task, µs per task in the collector, then the young / middle / full collections."""
    tasks = bench_tree._tasks(depth)
    gc.collect()
    gc.freeze()  # as run.py's run_on: the collections are the workload's own
    gc.collect()
    if not collector:
        gc.disable()
    before = [generation["collections"] for generation in gc.get_stats()]
    _collecting[1] = 0.0
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            seconds = runner.run(bench_tree._timed_tree(depth, leaf, False))
    finally:
        gc.enable()
        gc.unfreeze()
    after = [generation["collections"] for generation in gc.get_stats()]
    counts = [float(b - a) for a, b in zip(before, after, strict=True)]
    return [seconds / tasks * 1e6, _collecting[1] / tasks * 1e6, *counts]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaf", choices=sorted(LEAVES), default="none")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", default=DEFAULT_LOOPS)
    options = parser.parse_args()
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {}
    for spec in options.loops.split(","):
        module_name, _, factory = spec.partition(":")
        try:
            loops[module_name] = getattr(importlib.import_module(module_name), factory)
        except ImportError as exc:
            print(f"{module_name}: not installed ({exc})", file=sys.stderr)
    leaf = LEAVES[options.leaf]
    gc.callbacks.append(_time_collections)
    results: dict[tuple[str, bool], list[list[float]]] = {}
    for round_number in range(options.rounds):
        names = list(loops) if round_number % 2 == 0 else list(loops)[::-1]
        for collector in (True, False):
            for name in names:
                results.setdefault((name, collector), []).append(
                    _one_run(loops[name], options.depth, leaf, collector)
                )
    print(
        f"Python {sys.version.split()[0]}, tree of depth {options.depth}, leaves {options.leaf!r}: "
        f"{bench_tree._tasks(options.depth)} tasks; median of {options.rounds} runs per loop, µs per task"
    )
    print(f"{'loop':10s} {'with GC':>8s} {'of it GC':>9s} {'no GC':>7s}  collections (young/middle/full)")
    for name in loops:
        on = [statistics.median(column) for column in zip(*results[(name, True)], strict=True)]
        off = statistics.median(run[0] for run in results[(name, False)])
        counts = "/".join(f"{count:.0f}" for count in on[2:])
        print(f"{name:10s} {on[0]:8.2f} {on[1]:9.2f} {off:7.2f}  {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
