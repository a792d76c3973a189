"""What every benchmark of the suite shares: how one is declared, run on a loop, and measured.

A benchmark is a function ``(new_loop, size) -> Measured`` in one of the ``bench_*``
modules that ``run.py`` lists. ``run.py`` calls it in a fresh process, once per
(loop, benchmark, repetition), and collects what it returns. Every metric is
"lower is better" (time per operation, lateness, memory), so a ratio to the stock
loop reads the same way everywhere: below 1 is better than stock asyncio.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import resource
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

NewLoop = Callable[[], asyncio.AbstractEventLoop]

FULL, QUICK, SMOKE = "full", "quick", "smoke"
PROFILES = (FULL, QUICK, SMOKE)


class Unsupported(Exception):
    """Raised by a benchmark when the loop under test cannot run it (a result, not a failure)."""


@dataclass
class Measured:
    """What one run of a benchmark returns: metrics for the table, and facts for the JSON file."""

    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)


SCATTER_REPS = 15  # Benchmark.full_reps of the rows that scatter by more than their margin


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its function, its sizes per profile, and where it applies.

    ``phaseloop_only`` marks the Node-API scenarios (``phaseloop.node``); ``node`` names
    the JavaScript reference, ``(script under benchmarks/node/, scenario)``, which gets
    the size as its last argument and prints the same metrics as JSON. ``full_reps``
    is the least number of repetitions of a full-size run, for rows whose runs scatter
    by more than the loops differ: the task-heavy rows scatter by a third from process
    to process for every loop (the garbage collector is a fifth to three fifths of their
    time); the 64 KiB echoes by 15-30 %, where the loops differ by a few per cent (the
    syscalls are most of their time). ``fresh_heap`` runs it with glibc's mmap threshold
    held at its start-up value (``hold_fresh_heap``); every other benchmark runs with
    that threshold raised (``run.py``'s child frees a large block first).
    """

    name: str
    func: Callable[[NewLoop, int], Measured]
    sizes: dict[str, int]
    phaseloop_only: bool = False
    node: tuple[str, str] | None = None
    min_python: tuple[int, int] = (3, 11)
    full_reps: int = 0
    fresh_heap: bool = False

    def size(self, profile: str) -> int:
        return self.sizes[profile]

    @property
    def about(self) -> str:
        """The first line of the function's docstring."""
        lines = (self.func.__doc__ or "").strip().splitlines()
        return lines[0].replace("``", "") if lines else ""


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
START_MMAP_THRESHOLD = 128 * 1024  # glibc's start-up value (DEFAULT_MMAP_THRESHOLD_MIN)


def prime_heap() -> None:
    """Free a 1 MiB block: glibc then raises its mmap threshold for good (run.py's children's state)."""
    primer = bytearray(1 << 20)
    del primer


def hold_fresh_heap() -> None:
    """Hold glibc's mmap threshold at its start-up value, as in a process that has not freed a large block.

    glibc serves allocations of 128 KiB and more with ``mmap`` until the process frees
    such a block; then it raises the threshold for good. The stock transports allocate
    256 KiB for every read, so which state a process is in decides whether each read
    costs an ``mmap``, an ``mremap``, a ``munmap`` and page faults (phaseloop/transports.py).
    Setting the threshold explicitly also stops glibc from raising it, so every loop's run
    sees the same state whatever its imports freed.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        raise Unsupported("needs glibc's mallopt") from None
    if not mallopt(M_MMAP_THRESHOLD, START_MMAP_THRESHOLD):
        raise Unsupported("mallopt(M_MMAP_THRESHOLD) failed")


def sizes(full: int, quick: int, smoke: int) -> dict[str, int]:
    """The workload size of each profile: the default run, ``--quick`` and ``--smoke``."""
    return {FULL: full, QUICK: quick, SMOKE: smoke}


def run_on(new_loop: NewLoop, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main()`` to completion on a fresh loop from ``new_loop`` (asyncio.Runner, as asyncio.run).

    Every object alive before (imports, a warm-up run's survivors) is frozen out of the
    garbage collector first. CPython starts a full collection once the objects that
    survived young collections exceed a quarter of those that survived the last full
    one, so otherwise *when* the workload's full collections came (each tens of ms at
    full sizes) depended on how many objects each loop's imports had left, and runs of
    task-heavy benchmarks split into a fast and a slow group, 30-50 % apart, for every
    loop. The second collect() makes that count zero: the schedule is the workload's own.
    """
    gc.collect()
    gc.freeze()
    gc.collect()
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            return runner.run(main())
    finally:
        gc.unfreeze()


PIN_ENV = "PHASELOOP_BENCH_CPUS"  # "SERVER,CLIENT": the CPUs run.py pins its processes to


def pin(role: str) -> None:
    """Pin this process to the CPU run.py chose for ``role`` ("server" or "client"), if any.

    The two vCPUs of this machine are not equally fast (pinned, one ran task_gather in
    11 us/task, the other in 8-10), and an unpinned process lands on either: the
    medians then depended on which loop drew the slow CPU more often. Every loop's
    benchmark process now runs on the same CPU, and a network client on the other.
    """
    cpus = os.environ.get(PIN_ENV)
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return
    server, client = (int(cpu) for cpu in cpus.split(","))
    os.sched_setaffinity(0, {server if role == "server" else client})


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (``ru_maxrss``), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_kib() -> float:
    """This process's resident set size now, in KiB (from /proc; the peak where there is no /proc)."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1024
    except OSError:
        return peak_rss_mib() * 1024


def per_op_us(seconds: float, ops: int) -> float:
    """Microseconds per operation."""
    return seconds * 1e6 / max(ops, 1)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``fraction`` in [0, 1])."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]
