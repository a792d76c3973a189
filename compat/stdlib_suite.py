"""Run CPython's own ``test.test_asyncio`` loop tests against any event loop.

    python compat/stdlib_suite.py --loop phaseloop:new_event_loop
    python compat/stdlib_suite.py --loop uvloop:new_event_loop --modules test_events,test_streams
    python compat/stdlib_suite.py --loop all --json results.json

The tests come from the interpreter's installed ``test`` package, never from a
copy. The loop under test is put where those tests get their loops: the default
policy's loop factory (``asyncio.new_event_loop()``, ``asyncio.run()``) and
``asyncio.SelectorEventLoop`` (the ``test_events`` mixins construct it with each
selector). Every module runs in its own process, at most ``--jobs`` at a time.
Ends with ``passed=N failed=N errors=N skipped=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any

LOOPS = {
    "asyncio": "asyncio:new_event_loop",
    "uvloop": "uvloop:new_event_loop",
    "phaseloop": "phaseloop:new_event_loop",
}

# The modules whose tests run an event loop (those that only test the stock
# loop's private classes with mocks, test_base_events, test_selector_events,
# test_unix_events, test_proactor_events and the Windows ones, are left out).
MODULES = [
    "test_buffered_proto",
    "test_context",
    "test_eager_task_factory",
    "test_events",
    "test_futures",
    "test_futures2",
    "test_locks",
    "test_pep492",
    "test_protocols",
    "test_queues",
    "test_runners",
    "test_sendfile",
    "test_server",
    "test_sock_lowlevel",
    "test_ssl",
    "test_sslproto",
    "test_staggered",
    "test_streams",
    "test_subprocess",
    "test_taskgroups",
    "test_tasks",
    "test_threads",
    "test_timeouts",
    "test_transports",
    "test_waitfor",
]

# phaseloop's failures that follow from Node's ordering, with the rule (docs/semantics.md,
# "Deviations from stock asyncio"). Any other failure on phaseloop is a bug.
EXPLAINED = {
    "test_locks.BarrierTests.test_repr": (
        "R19/R20: the released waiters' wake-ups are microtasks, so they leave the barrier before "
        "the test's sleep(0) (an immediate) returns, and the 'draining' state is never observed"
    ),
    "test_locks.SemaphoreTests.test_acquire_fifo_order_4": (
        "R19/R20 (3.13): release() wakes c1 with a microtask, which runs before the test's "
        "sleep(0) (an immediate) returns, so the 'first hasn't woken up yet' state is never seen"
    ),
    "test_timeouts.TimeoutTests.test_nested_timeouts": (
        "R11: microtasks run between two timers of one phase; the outer timeout's cancellation "
        "reaches the task before the inner timer (same deadline) fires, so cm2 never expires"
    ),
    "test_streams.StreamTests.test_async_writer_api_exception_after_close": (
        "R25: connection_lost runs in the close phase, after the check phase where drain()'s "
        "sleep(0) resumes, so drain() right after close() does not see the lost connection"
    ),
    "test_subprocess.SubprocessThreadedWatcherTests.test_cancel_make_subprocess_transport_exec": (
        "R19/R21: the creation chain runs to its end in microtasks before call_soon(task.cancel) "
        "(an immediate), so there is nothing left to cancel and the child keeps running"
    ),
    "test_subprocess.SubprocessThreadedWatcherTests.test_cancel_post_init": (
        "R19/R21: as test_cancel_make_subprocess_transport_exec"
    ),
}

MODULE_TIMEOUT = 900
TEST_TIMEOUT = 45  # a hung test fails with TimeoutError instead of stalling its module


class TestTimedOut(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise TestTimedOut(f"test did not finish within {TEST_TIMEOUT}s")


def resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr or "new_event_loop")


def install(spec: str) -> None:
    """Make every loop the stdlib tests create come from ``spec``."""
    if spec == LOOPS["asyncio"]:
        return
    factory = resolve(spec)
    probe = factory()
    base = type(probe)
    probe.close()
    takes_selector = "selector" in inspect.signature(base.__init__).parameters

    class LoopUnderTest(base):  # type: ignore[valid-type,misc]
        def __init__(self, selector: Any = None) -> None:
            if takes_selector:
                super().__init__(selector)
            else:
                super().__init__()

    if not hasattr(probe, "_default_executor"):
        # test_asyncio's close_loop() reads this stdlib attribute (uvloop has none).
        LoopUnderTest._default_executor = None  # type: ignore[attr-defined]
    LoopUnderTest.__name__ = base.__name__
    LoopUnderTest.__qualname__ = base.__qualname__
    from asyncio import unix_events

    asyncio.SelectorEventLoop = LoopUnderTest  # type: ignore[misc]
    if hasattr(asyncio, "EventLoop"):  # 3.13+: the platform's default loop class
        asyncio.EventLoop = LoopUnderTest
    unix_events.SelectorEventLoop = LoopUnderTest  # type: ignore[attr-defined]
    unix_events._UnixDefaultEventLoopPolicy._loop_factory = LoopUnderTest  # type: ignore[attr-defined]


class _Result(unittest.TextTestResult):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passed: list[str] = []

    def startTest(self, test: unittest.TestCase) -> None:  # noqa: N802 - unittest's name
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TEST_TIMEOUT)
        super().startTest(test)

    def stopTest(self, test: unittest.TestCase) -> None:  # noqa: N802
        signal.alarm(0)
        super().stopTest(test)

    def addSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        super().addSuccess(test)
        self.passed.append(test.id())


def run_module(module: str, spec: str) -> dict[str, Any]:
    """In-process: run one test module on the loop ``spec``; return the counts and the failing ids."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started in the background by a shell without job control (``suite &``), this
        # process inherits SIGINT ignored: Python then installs no KeyboardInterrupt
        # handler, _thread.interrupt_main() does nothing, and test_runners' interrupt
        # tests wait for a SIGINT that never comes. Run the tests as a terminal would.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    install(spec)
    try:
        mod = importlib.import_module(f"test.test_asyncio.{module}")
    except ImportError as exc:
        return {"module": module, "missing": str(exc)}
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    with open(os.devnull, "w") as devnull:
        runner = unittest.TextTestRunner(stream=devnull, resultclass=_Result, verbosity=0)
        result: Any = runner.run(suite)
    return {
        "module": module,
        "passed": len(result.passed),
        "failed": len(result.failures) + len(result.unexpectedSuccesses),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "failures": sorted(t.id() for t, _ in result.failures + result.errors)
        + sorted(t.id() for t in result.unexpectedSuccesses),
        "details": {t.id(): tb[-1500:] for t, tb in result.failures + result.errors},
    }


def run_all(specs: list[str], modules: list[str], jobs: int) -> list[dict[str, Any]]:
    work = [(spec, module) for module in modules for spec in specs]
    running: list[tuple[str, str, subprocess.Popen[str], float, Any]] = []
    results: list[dict[str, Any]] = []
    while work or running:
        while work and len(running) < jobs:
            spec, module = work.pop(0)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", module, "--loop", spec]
            out = tempfile.TemporaryFile("w+")  # not a pipe: a big report must not block the child
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, text=True)
            running.append((spec, module, proc, time.monotonic(), out))
        time.sleep(0.05)
        for item in list(running):
            spec, module, proc, started, outfile = item
            elapsed = time.monotonic() - started
            if proc.poll() is None and elapsed < MODULE_TIMEOUT:
                continue
            running.remove(item)
            if proc.returncode is None:
                proc.kill()
                proc.wait()
                entry: dict[str, Any] = {"module": module, "crashed": f"timed out after {MODULE_TIMEOUT}s"}
            else:
                outfile.seek(0)
                out = outfile.read()
                lines = [line for line in out.splitlines() if line.startswith("{")]
                entry = (
                    json.loads(lines[-1]) if lines else {"module": module, "crashed": f"rc={proc.returncode}"}
                )
            outfile.close()
            entry["loop"] = spec
            entry["seconds"] = round(elapsed, 1)
            results.append(entry)
            print(_row(entry), flush=True)
    return results


def _row(entry: dict[str, Any]) -> str:
    name = f"{entry['loop']:<28} {entry['module']:<24}"
    if "missing" in entry:
        return f"{name} (not in this Python)"
    if "crashed" in entry:
        return f"{name} CRASHED {entry['crashed']}"
    return (
        f"{name} passed={entry['passed']} failed={entry['failed']} errors={entry['errors']} "
        f"skipped={entry['skipped']} ({entry['seconds']}s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loop", default="phaseloop", help="MODULE:FACTORY, a name from LOOPS, or 'all'")
    parser.add_argument("--modules", default=",".join(MODULES), help="comma-separated test_asyncio modules")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", help="write every result (with failing test ids) to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    specs = list(LOOPS.values()) if args.loop == "all" else [LOOPS.get(args.loop, args.loop)]
    if args.child:
        print(json.dumps(run_module(args.child, specs[0])))
        return 0
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    results = run_all(specs, modules, args.jobs)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"python": sys.version.split()[0], "results": results}, fh, indent=1)
    unexplained = []
    for spec in specs:
        rows = [r for r in results if r["loop"] == spec and "passed" in r]
        totals = {k: sum(r[k] for r in rows) for k in ("passed", "failed", "errors", "skipped")}
        crashed = [r["module"] for r in results if r["loop"] == spec and "crashed" in r]
        print(
            f"{spec}: passed={totals['passed']} failed={totals['failed']} errors={totals['errors']} "
            f"skipped={totals['skipped']}" + (f" crashed_modules={','.join(crashed)}" if crashed else "")
        )
        if spec == LOOPS["phaseloop"]:
            failures = [t.removeprefix("test.test_asyncio.") for r in rows for t in r["failures"]]
            unexplained += [t for t in failures if t not in EXPLAINED] + crashed
            for test in failures:
                print(f"  {'explained' if test in EXPLAINED else 'UNEXPLAINED'}: {test}")
    # Only phaseloop is held to this: the other loops are references.
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
