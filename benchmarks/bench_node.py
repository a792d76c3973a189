"""Node's API on phaseloop: set_timeout, set_immediate, next_tick, queue_microtask throughput.

phaseloop only; ``benchmarks/node/node_api.js`` runs the same scenarios on Node.js as
the reference. Each scenario starts from ``phaseloop.node.run``'s main script, as a
Node script starts from its top level, and is timed until its last callback ran.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from bench_measure import Benchmark, Measured, NewLoop, per_op_us, sizes

# A scenario schedules n callbacks from the main script and, when the last one has run,
# appends the seconds since it started to ``out``.
Scenario = Callable[[int, list[float]], None]


def _timed(scenario: Scenario, n: int) -> float:
    from phaseloop import node

    out: list[float] = []
    node.run(lambda: scenario(n, out))
    return out[0]


def _noop() -> None:
    pass


def _batch(api: str) -> Scenario:
    def scenario(n: int, out: list[float]) -> None:
        from phaseloop import node

        schedule = node.set_timeout if api == "set_timeout" else node.set_immediate
        count = 0

        def callback() -> None:
            nonlocal count
            count += 1
            if count == n:
                out.append(time.perf_counter() - start)

        start = time.perf_counter()
        if api == "set_timeout":
            for _ in range(n):
                schedule(callback, 1)
        else:
            for _ in range(n):
                schedule(callback)

    return scenario


def _chain(api: str) -> Scenario:
    def scenario(n: int, out: list[float]) -> None:
        from phaseloop import node

        again = getattr(node, api)
        count = 0

        def callback() -> None:
            nonlocal count
            count += 1
            if count == n:
                out.append(time.perf_counter() - start)
            else:
                again(callback)

        start = time.perf_counter()
        again(callback)

    return scenario


def _measure(scenario: Scenario, n: int) -> Measured:
    _timed(scenario, max(1, n // 10))
    seconds = _timed(scenario, n)
    return Measured({"us/callback": per_op_us(seconds, n)}, _handle_sizes())


def _handle_sizes() -> dict[str, int]:
    from phaseloop import node

    found: dict[str, int] = {}

    def main() -> None:
        timeout = node.set_timeout(_noop, 1)
        immediate = node.set_immediate(_noop)
        found["sizeof Timeout"] = sys.getsizeof(timeout)
        found["sizeof Immediate"] = sys.getsizeof(immediate)
        node.clear_timeout(timeout)
        node.clear_immediate(immediate)

    node.run(main)
    return found


def set_timeout_batch(new_loop: NewLoop, n: int) -> Measured:
    """``n`` × ``set_timeout(cb, 1)`` in one go, until the last fired (includes the 1 ms)."""
    return _measure(_batch("set_timeout"), n)


def set_immediate_batch(new_loop: NewLoop, n: int) -> Measured:
    """``n`` × ``set_immediate(cb)`` in one go: one check phase."""
    return _measure(_batch("set_immediate"), n)


def set_immediate_chain(new_loop: NewLoop, n: int) -> Measured:
    """Each immediate sets the next: one loop iteration per callback."""
    return _measure(_chain("set_immediate"), n)


def next_tick_chain(new_loop: NewLoop, n: int) -> Measured:
    """Each ``next_tick`` callback queues the next: one drain of the tick queue."""
    return _measure(_chain("next_tick"), n)


def queue_microtask_chain(new_loop: NewLoop, n: int) -> Measured:
    """Each ``queue_microtask`` callback queues the next: one drain of the microtask queue."""
    return _measure(_chain("queue_microtask"), n)


def _node_api(name: str, func: Callable[[NewLoop, int], Measured], size: dict[str, int]) -> Benchmark:
    return Benchmark(name, func, size, phaseloop_only=True, node=("node_api.js", name))


BENCHMARKS = [
    _node_api("set_timeout_batch", set_timeout_batch, sizes(200_000, 100_000, 1_000)),
    _node_api("set_immediate_batch", set_immediate_batch, sizes(400_000, 200_000, 1_000)),
    _node_api("set_immediate_chain", set_immediate_chain, sizes(200_000, 100_000, 1_000)),
    _node_api("next_tick_chain", next_tick_chain, sizes(400_000, 200_000, 1_000)),
    _node_api("queue_microtask_chain", queue_microtask_chain, sizes(400_000, 200_000, 1_000)),
]
