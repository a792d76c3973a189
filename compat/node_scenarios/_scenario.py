"""The JavaScript idioms the translated Node scenarios share, each with its Python counterpart.

Every ``NN_name.py`` next to this file translates ``scenarios/NN_name.js`` of the
Node oracle (``shared/node-oracle``). Each is a standalone script, run in a fresh
process as Node runs a ``.js`` file (with the repository on ``PYTHONPATH``)::

    python compat/node_scenarios/01_main_all_queues.py

and prints its tokens one per line when the process ends, as the JS does in
``process.on('exit')``. ``compat/node_oracle.py`` runs them and compares.

=================================  ===============================================
JavaScript                         here
=================================  ===============================================
``out.push(t)``                    ``log(t)``
``process.on('exit', print)``      ``print_out()`` after ``run(main)`` returns
``busy(ms)`` on performance.now    ``busy(ms)`` on ``time.perf_counter``
``Promise.resolve()``              ``resolved()``: a loop future, already resolved
``p.then(fn)``                     ``then(p, fn)``: a done-callback (a microtask)
                                   that resolves the returned future with ``fn()``
the script and its process         ``run(main)``: ``phaseloop.node.run``
``fs.stat(path, cb)``, ``crypto``   ``loop.run_in_executor(None, os.stat, path)
``.pbkdf2(..., cb)``                .add_done_callback(cb)``: the job completes in the
                                   poll phase, ``cb`` is a microtask right after; in
                                   03, where ``cb``'s own tick/promise order shows,
                                   the job posts ``cb`` with ``call_soon_threadsafe``
=================================  ===============================================

``run`` passes the loop options that ``node_oracle.py --loop`` chose (through
``PHASELOOP_ORACLE_LOOP``), so the same scripts also run in debug mode.

Thread-pool jobs and the GIL: libuv's workers run in parallel with JavaScript, so an
fs.stat finishes while the main thread busy-waits. A CPython worker whose ``os.stat``
has returned needs the GIL back to post its completion, and a pure-Python busy-wait on
the loop thread holds the GIL for up to ``sys.getswitchinterval()`` (5 ms) at a time: in
31 the stat completion then lands after ``step1`` in most runs. ``run`` sets a 0.1 ms
switch interval, so that a finished job reaches the loop about when a libuv worker's
would. It is a setting of the process, like ``UV_THREADPOOL_SIZE``; no time is faked.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from phaseloop import node

__all__ = ["LOOPS", "busy", "log", "out", "print_out", "resolved", "run", "then"]

# The loops node_oracle.py --loop can choose: phaseloop.node.run's loop options.
LOOPS: dict[str, dict[str, Any]] = {
    "phaseloop": {},
    "phaseloop-debug": {"debug": True},
}
SWITCH_INTERVAL = 0.0001  # seconds; see above

out: list[str] = []
log = out.append


def print_out() -> None:
    """``process.stdout.write(out.join('\\n') + '\\n')``."""
    sys.stdout.write("".join(token + "\n" for token in out))
    sys.stdout.flush()


def busy(ms: float) -> None:
    """Keep this thread busy for ``ms`` milliseconds, like the scenarios' ``busy``.

    Node's ``busy`` blocks only the JavaScript thread: libuv's pool threads go on in
    parallel, so an ``fs`` call made before it has finished when it ends. A Python
    spin would also hold the GIL, and a pool thread waiting for it gets it only every
    5 ms switch interval: a job could finish one or two ``busy`` calls later than in
    Node (seen once in 20 runs of 31_await_immediate_loop_fair). ``sleep(0)`` lets a
    waiting thread take the GIL at once, as if it ran on a core of its own.
    """
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        time.sleep(0)


def resolved(value: object = None) -> asyncio.Future[Any]:
    """``Promise.resolve(value)``: a future of the running loop, already resolved."""
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def then(promise: asyncio.Future[Any], fn: Callable[[], object]) -> asyncio.Future[Any]:
    """``promise.then(fn)``: ``fn()`` runs as a microtask once ``promise`` is resolved;
    the returned future is resolved with its result then (one more turn for its own reactions)."""
    derived = promise.get_loop().create_future()

    def reaction(_: asyncio.Future[Any]) -> None:
        derived.set_result(fn())

    promise.add_done_callback(reaction)
    return derived


def run(main: Callable[[], object]) -> object:
    """Run ``main`` as Node runs a script (``phaseloop.node.run``), on the loop the runner chose."""
    name = os.environ.get("PHASELOOP_ORACLE_LOOP", "phaseloop")
    if name not in LOOPS:
        raise SystemExit(f"PHASELOOP_ORACLE_LOOP={name!r} is not one of {sorted(LOOPS)}")
    sys.setswitchinterval(SWITCH_INTERVAL)
    return node.run(main, **LOOPS[name])
