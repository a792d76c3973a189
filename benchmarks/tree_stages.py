"""Where ``tree_future``'s peak RSS comes from: the process's RSS at each stage of a tree.

Runs ``bench_tree``'s gather tree (6 branches) with leaves that wait for a future
resolved by ``call_soon``, as ``tree_future`` does, in a fresh process per loop and
round, loops alternating. The leaf coroutine reads ``/proc/self/statm`` when the first
leaf starts (the tree of tasks is built and every leaf's first step is queued) and when
the last leaf starts (every earlier leaf has queued its ``call_soon``; the last leaf's
own adds a few hundred bytes). Printed per loop, medians in KiB: the RSS before the
tree, its growth while the tree was built, its growth while the leaves ran their first
steps, and the RSS when the last leaf started, which is the process's peak to within a
few pages (``ru_maxrss`` is printed beside it; it is never below this script's own
RSS, which Linux carries into the children it spawns); then the RSS once the loop is
closed and the garbage collected: what the process kept; last, the RSS once CPython's
type cache is cleared too (``sys._clear_type_cache()``). That cache holds a reference to
the name of each attribute it looks up, and the C ``Task`` looks up ``result`` on a
``gather`` future under a name made afresh each time: each name the cache keeps holds
the allocator arena (1 MiB) it sits in. A diagnostic for docs/performance.md ("Where
tree_future's peak comes from", "What the process keeps after a tree"), not part of
``run.py``'s suite; Linux only::

    PYTHONPATH=. python benchmarks/tree_stages.py [--depth 6] [--rounds 3]
        [--loops MODULE:FACTORY,...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_tree  # noqa: E402
from bench_measure import current_rss_kib, peak_rss_mib, run_on  # noqa: E402

DEFAULT_LOOPS = "asyncio:new_event_loop,phaseloop:new_event_loop"
STAGES = ("before", "build", "leaves", "at last leaf", "ru_maxrss", "after", "cache cleared")
_ALLOCATOR_PRIMER = [bytearray(1 << 20)]  # freed before the tree, as run.py's child does


def child(loop_spec: str, depth: int) -> dict[str, int]:
    """One tree on one loop in this process: the RSS readings, in KiB."""
    del _ALLOCATOR_PRIMER[:]
    module, factory_name = loop_spec.split(":")
    factory = getattr(importlib.import_module(module), factory_name)
    leaves = bench_tree.BRANCHES**depth
    started = [0]
    readings: list[int] = []

    async def leaf() -> None:
        started[0] += 1
        if started[0] == 1 or started[0] == leaves:
            readings.append(round(current_rss_kib()))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        await future

    run_on(factory, lambda: bench_tree._timed_tree(max(1, depth - 2), leaf, False))  # warm-up, as run.py
    started[0] = 0
    readings.clear()
    before = round(current_rss_kib())
    run_on(factory, lambda: bench_tree._timed_tree(depth, leaf, False))
    first, last = readings  # depth >= 1: at least 6 leaves, so two readings
    peak = round(peak_rss_mib() * 1024)
    gc.collect()
    after = round(current_rss_kib())
    sys._clear_type_cache()
    return {
        "before": before,
        "build": first - before,
        "leaves": last - first,
        "at last leaf": last,
        "ru_maxrss": peak,
        "after": after,
        "cache cleared": round(current_rss_kib()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=6, help="levels of 6 branches (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per loop (default 3)")
    parser.add_argument("--loops", default=DEFAULT_LOOPS, help=f"MODULE:FACTORY,... ({DEFAULT_LOOPS})")
    parser.add_argument("--child", metavar="MODULE:FACTORY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.depth < 1 or args.rounds < 1:
        parser.error("--depth and --rounds must be at least 1")
    if not os.path.exists("/proc/self/statm"):
        parser.error("this diagnostic reads /proc/self/statm (Linux)")
    if args.child:
        print(json.dumps(child(args.child, args.depth)))
        return 0
    # Byte-compile the loops as run.py does (a module compiled in a child would show in its
    # RSS), in a process of its own: Linux carries a parent's peak RSS into the children it
    # spawns (vfork, then exec), and importing run.py here would raise that floor.
    compiling = (
        f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); from run import compile_sources, parse_loops; "
        f"compile_sources(parse_loops({args.loops!r}))"
    )
    subprocess.run([sys.executable, "-c", compiling], check=True)
    specs = [spec.strip() for spec in args.loops.split(",") if spec.strip()]
    results: dict[str, list[dict[str, int]]] = {spec: [] for spec in specs}
    for _ in range(args.rounds):
        for spec in specs:
            command = [sys.executable, __file__, "--child", spec, "--depth", str(args.depth)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                return 1
            results[spec].append(json.loads(proc.stdout.splitlines()[-1]))
    leaves = bench_tree.BRANCHES**args.depth
    print(f"depth {args.depth} ({leaves} leaves), median of {args.rounds} processes per loop, KiB")
    print(f"{'loop':32} " + " ".join(f"{stage:>13}" for stage in STAGES))
    for spec, runs in results.items():
        medians = [round(statistics.median(run[stage] for run in runs)) for stage in STAGES]
        print(f"{spec:32} " + " ".join(f"{value:>13}" for value in medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
