"""The phase-ordered loop: where each asyncio operation runs, the drain rule, liveness, hooks, faults."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import logging
import os
import selectors
import socket
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phaseloop
from phaseloop import node
from phaseloop.handles import SHARED_EMPTY_CONTEXT

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def loop() -> Iterator[phaseloop.EventLoop]:
    loop = phaseloop.new_event_loop()
    yield loop
    loop.close()


def busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def logger(out: list[str], loop: phaseloop.EventLoop) -> Callable[[str], Callable[..., None]]:
    """A callback factory that records its token and the phase it ran in."""

    def make(token: str) -> Callable[..., None]:
        def record(*_: object) -> None:
            out.append(f"{token}@{loop.phase}")

        return record

    return make


# ---------------------------------------------------------------------------
# Where plain asyncio operations run (SEMANTICS §3)
# ---------------------------------------------------------------------------


def test_call_soon_runs_in_check_phase(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    mark = logger(out, loop)
    loop.call_soon(mark("soon"))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["soon@check"]


@pytest.mark.parametrize("debug", [False, True])
def test_call_soon_handle_reads_and_cancels_as_the_stdlib_s(loop: phaseloop.EventLoop, debug: bool) -> None:
    # The fast path builds its own Handle subclass (handles.Handle); users see asyncio's.
    loop.set_debug(debug)
    out: list[str] = []
    kept = loop.call_soon(out.append, "kept")
    dropped = loop.call_soon(out.append, "dropped")
    assert isinstance(kept, asyncio.Handle) and not isinstance(kept, asyncio.TimerHandle)
    assert repr(kept).startswith("<Handle ") and "append" in repr(kept)
    dropped.cancel()
    assert dropped.cancelled() and repr(dropped).startswith("<Handle cancelled")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["kept"]


class _RecordingLoop(phaseloop.EventLoop):
    """A loop that records what each call_soon was given and what it returned."""

    def __init__(self, wakeups: str = "microtask") -> None:
        super().__init__(wakeups=wakeups)
        self.calls: list[tuple[str, object]] = []

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
        returned = super().call_soon(callback, *args, context=context)
        self.calls.append((getattr(callback, "__name__", type(callback).__name__), returned))
        return returned


def _kind(returned: object) -> str:
    if returned is None:
        return "bare"
    if type(returned) is phaseloop.handles.InternalCall:
        return "internal"
    assert isinstance(returned, asyncio.Handle), returned
    return "handle"


@pytest.mark.parametrize(
    ("debug", "wakeups"), [(False, "microtask"), (False, "immediate"), (True, "microtask")]
)
def test_what_call_soon_returns_for_asyncio_s_own_callbacks(debug: bool, wakeups: str) -> None:
    # A task's steps and gather's done callbacks (which asyncio drops unread) queue bare
    # as microtasks, and call_soon returns None; in the check phase's queue (a bare
    # ``yield``, or "immediate" wake-ups) they are InternalCalls. A task's wake-up and
    # every callback a program passes get a Handle, and debug mode gives Handles to all.
    loop = _RecordingLoop(wakeups)
    loop.set_debug(debug)

    async def child(future: asyncio.Future[None]) -> None:
        await asyncio.sleep(0)  # a bare ``yield``: the task's own step
        await future  # the task's wake-up, when the future is done

    async def main() -> None:
        future = loop.create_future()
        loop.call_soon(future.set_result, None)  # a program's call
        loop.call_soon(lambda fut: None, future)  # a program's cb(future)
        await asyncio.gather(child(future), child(future))  # done callbacks

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    kinds: dict[str, set[str]] = {}
    for name, returned in loop.calls:
        kinds.setdefault(name, set()).add(_kind(returned))
    assert {"TaskStepMethWrapper", "task_wakeup", "_done_callback", "set_result", "<lambda>"} <= set(kinds)
    programs = {name: {"handle"} for name in kinds.keys() - {"TaskStepMethWrapper", "_done_callback"}}
    if debug:
        assert kinds == {name: {"handle"} for name in kinds}
    elif wakeups == "microtask":
        # Steps that start or wake a task are bare; the step after its own bare ``yield`` is not.
        assert kinds == {"TaskStepMethWrapper": {"bare", "internal"}, "_done_callback": {"bare"}, **programs}
    else:
        assert kinds == {"TaskStepMethWrapper": {"internal"}, "_done_callback": {"internal"}, **programs}


@pytest.mark.parametrize("wakeups", ["microtask", "immediate"])
def test_gather_s_done_callback_given_by_a_program(wakeups: str) -> None:
    # A program can reach gather's done callback only through a future's private _callbacks.
    # Given it, call_soon returns None where it queues the callback bare, and otherwise an
    # InternalCall that cancels, and reads, as a handle does.
    loop = phaseloop.new_event_loop(wakeups=wakeups)

    async def main() -> list[str]:
        child = loop.create_future()
        outer = asyncio.gather(child)
        ((done_callback, _),) = child._callbacks  # type: ignore[attr-defined]
        context = contextvars.copy_context()
        call = loop.call_soon(done_callback, child, context=context)
        seen = []
        if wakeups == "microtask":
            assert call is None
        else:
            assert type(call) is phaseloop.handles.InternalCall
            assert call.get_context() is context and not call.cancelled()
            assert repr(call).startswith("<InternalCall ") and "_done_callback" in repr(call)
            call.cancel()
            assert call.cancelled() and repr(call).startswith("<InternalCall cancelled")
            await asyncio.sleep(0)  # the cancelled call's queue has run: nothing resolved the outer future
            seen.append(f"outer done={outer.done()}")
        # Queued bare, the call runs after this (it reads the result) and resolves the outer
        # future; the child's own done callback then finds it done.
        child.set_result("value")
        seen.append(f"outer {await outer}")
        return seen

    try:
        seen = loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == (
        ["outer ['value']"] if wakeups == "microtask" else ["outer done=False", "outer ['value']"]
    )


def test_debug_mode_switched_on_runs_bare_entries_as_handles(
    loop: phaseloop.EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    # Task steps queued bare before set_debug(True) run, and are timed, as asyncio.Handles.
    async def child(i: int) -> int:
        await asyncio.sleep(0)
        return i

    tasks = [loop.create_task(child(i)) for i in range(3)]  # three bare first steps
    assert len(loop._microtasks) == 6
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        assert loop.run_until_complete(asyncio.gather(*tasks)) == [0, 1, 2]
    # The stdlib names a task's step by its task; these ran while the tasks were pending.
    timed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Executing <Task pending")]
    assert len(timed) == 3


def test_an_internal_call_that_raises_reaches_the_handler_as_a_handle(loop: phaseloop.EventLoop) -> None:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: contexts.append(context))

    async def main() -> None:
        child = loop.create_future()
        outer = asyncio.gather(child)
        ((done_callback, _),) = child._callbacks  # type: ignore[attr-defined]
        child.set_result(None)
        await outer
        # The outer future is done, so the callback asks the pending future for its
        # exception: InvalidStateError, raised inside the loop's drain.
        loop.call_soon(done_callback, loop.create_future())
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    (context,) = contexts
    assert context["message"].startswith("Exception in callback ")
    assert "_done_callback" in context["message"]
    assert isinstance(context["exception"], asyncio.InvalidStateError)
    assert isinstance(context["handle"], asyncio.Handle)
    assert context["handle"]._callback.__name__ == "_done_callback"


@pytest.mark.parametrize("debug", [False, True])
def test_create_task_keeps_the_stdlib_s_options(loop: phaseloop.EventLoop, debug: bool) -> None:
    # Without a factory or debug mode create_task makes the Task itself (EventLoop.create_task).
    loop.set_debug(debug)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    context = contextvars.copy_context()
    context.run(var.set, "given")

    async def read() -> str:
        return var.get()

    task = loop.create_task(read(), name="reader", context=context)
    assert type(task) is asyncio.Task and task.get_name() == "reader"
    if debug:  # the creation traceback ends here, not in the loop
        assert task._source_traceback[-1].name == "test_create_task_keeps_the_stdlib_s_options"  # type: ignore[attr-defined]
    assert loop.run_until_complete(task) == "given"

    made: list[str | None] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(kwargs.get("name"))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    assert loop.run_until_complete(loop.create_task(read(), name="made")) == "unset"
    assert made[0] in (None, "made")  # 3.13 hands the name to the factory; older set it after
    loop.close()
    coro = read()
    with pytest.raises(RuntimeError, match="closed"):
        loop.create_task(coro)
    coro.close()


def test_call_later_runs_in_timers_phase(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    mark = logger(out, loop)
    loop.call_later(0.001, mark("later"))
    loop.call_later(0.002, loop.stop)
    loop.run_forever()
    assert out == ["later@timers"]


def test_future_callbacks_are_microtasks_drained_after_the_callback(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    mark = logger(out, loop)

    def immediate() -> None:
        fut = loop.create_future()
        fut.add_done_callback(mark("done-callback"))
        fut.set_result(None)
        loop.call_soon(mark("next-immediate"))
        out.append("immediate-end")

    loop.call_soon(immediate)
    loop.call_soon(mark("queued-immediate"))
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert out == ["immediate-end", "done-callback@check", "queued-immediate@check", "next-immediate@check"]


def test_call_soon_threadsafe_runs_in_poll_phase(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    mark = logger(out, loop)
    thread = threading.Thread(target=lambda: loop.call_soon_threadsafe(mark("threadsafe")))
    loop.call_soon(thread.start)
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    thread.join()
    assert out == ["threadsafe@poll"]


def test_reader_callback_runs_in_poll_phase_and_drains(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    mark = logger(out, loop)
    rsock, wsock = socket.socketpair()

    def readable() -> None:
        rsock.recv(10)
        loop.remove_reader(rsock)
        out.append(f"reader@{loop.phase}")
        loop.call_soon(mark("immediate"))
        loop.call_later(0, mark("timeout"))
        node.next_tick(mark("tick"))
        node.queue_microtask(mark("micro"))
        loop.call_later(0.01, loop.stop)

    try:
        loop.add_reader(rsock, readable)
        wsock.send(b"x")
        loop.run_forever()
    finally:
        rsock.close()
        wsock.close()
    # R29: inside an I/O callback the immediate always precedes the 0 ms timer.
    assert out == ["reader@poll", "tick@poll", "micro@poll", "immediate@check", "timeout@timers"]


def test_executor_completion_runs_in_poll_phase(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []

    async def main() -> None:
        fut = loop.run_in_executor(None, os.getpid)
        fut.add_done_callback(lambda f: out.append(f"done@{loop.phase}"))
        await fut
        out.append(f"resumed@{loop.phase}")

    loop.run_until_complete(main())
    assert out == ["done@poll", "resumed@poll"]


def test_connection_lost_runs_in_close_phase_in_reverse_order(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []

    class Proto(asyncio.Protocol):
        def __init__(self, name: str) -> None:
            self.name = name

        def connection_lost(self, exc: BaseException | None) -> None:
            out.append(f"{self.name}-lost@{loop.phase}")

    async def main() -> None:
        pairs = [socket.socketpair() for _ in range(3)]
        transports = []
        for n, (a, _) in enumerate(pairs):
            transport, _ = await loop.connect_accepted_socket(lambda n=n: Proto(f"t{n}"), a)
            transports.append(transport)
        done = loop.create_future()

        def close_all() -> None:
            for transport in transports:
                transport.close()
            loop.call_soon(lambda: out.append(f"immediate@{loop.phase}"))
            loop.call_later(0.01, done.set_result, None)

        loop.call_later(0, close_all)  # from the timers phase: check and close come next
        await done
        for _, b in pairs:
            b.close()

    loop.run_until_complete(main())
    # R25: handles closed in one iteration report in reverse order, after the check phase.
    assert out == ["immediate@check", "t2-lost@close", "t1-lost@close", "t0-lost@close"]


def test_refused_connect_is_reported_in_pending_phase(loop: phaseloop.EventLoop, tmp_path: Any) -> None:
    out: list[str] = []
    path = str(tmp_path / "sock")
    bound = socket.socket(socket.AF_UNIX)
    bound.bind(path)  # bound but not listening: connect() is refused synchronously

    async def main() -> None:
        loop.call_soon(lambda: out.append(f"immediate@{loop.phase}"))
        try:
            await loop.create_unix_connection(asyncio.Protocol, path)
        except ConnectionRefusedError:
            out.append(f"refused@{loop.phase}")

    try:
        loop.run_until_complete(main())
    finally:
        bound.close()
    # libuv feeds a synchronous connect() failure to the pending queue (uv__io_feed).
    assert out == ["refused@pending", "immediate@check"]


def test_sleep_zero_yields_to_check_phase_and_reaches_poll(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    rsock, wsock = socket.socketpair()

    def readable() -> None:
        rsock.recv(10)
        loop.remove_reader(rsock)
        out.append(f"io@{loop.phase}")

    async def main() -> None:
        loop.add_reader(rsock, readable)
        wsock.send(b"x")
        for i in range(2):
            out.append(f"step{i}@{loop.phase}")
            await asyncio.sleep(0)

    try:
        loop.run_until_complete(main())
    finally:
        rsock.close()
        wsock.close()
    # The task's first step is a microtask (drained at start-up); each sleep(0) resumes in check.
    assert out == ["step0@None", "io@poll", "step1@check"]


def test_a_method_is_routed_by_what_it_is_bound_to(loop: phaseloop.EventLoop) -> None:
    # One function, bound to a protocol and to a plain object: the protocol's call is the
    # rest of an I/O callback (a microtask), the other a setImmediate (check), whichever
    # came first. The router caches what it learns per function and per class.
    out: list[str] = []

    class Sink:
        def data_received(self, data: bytes) -> None:
            out.append(f"{type(self).__name__}:{data.decode()}@{loop.phase}")

    class Protocol(Sink, asyncio.Protocol):
        pass

    class Plain(Sink):
        pass

    def start() -> None:
        loop.call_soon(Plain().data_received, b"a")
        loop.call_soon(Protocol().data_received, b"b")
        loop.call_soon(Plain().data_received, b"c")
        out.append(f"start@{loop.phase}")

    loop.call_soon(start)
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert out == ["start@check", "Protocol:b@check", "Plain:a@check", "Plain:c@check"]


def test_router_cache_stays_small_with_classes_made_on_the_fly(loop: phaseloop.EventLoop) -> None:
    # A class made per call (a factory's local class) brings a new function each time: the
    # router's cache must not keep every one of them, nor the classes they reach.
    def make() -> Any:
        class Local:
            def run(self) -> None:
                pass

        return Local().run

    for _ in range(5000):
        loop.call_soon(make())
    _one_iteration(loop)
    assert len(loop._method_routes) <= 1024


def test_wakeups_immediate_mode_sends_wakeups_to_check() -> None:
    loop = phaseloop.new_event_loop(wakeups="immediate")
    out: list[str] = []
    try:

        def immediate() -> None:
            fut = loop.create_future()
            fut.add_done_callback(lambda _: out.append(f"done@{loop.phase}"))
            fut.set_result(None)
            loop.call_soon(lambda: out.append("next-immediate"))

        loop.call_soon(immediate)
        loop.call_soon(lambda: out.append("queued-immediate"))
        loop.call_later(0.005, loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    # A done-callback is an immediate now: it waits behind those already queued.
    assert out == ["queued-immediate", "done@check", "next-immediate"]


def test_new_task_first_step_is_a_microtask(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []

    async def child() -> None:
        out.append(f"child@{loop.phase}")

    def immediate() -> None:
        loop.create_task(child())
        loop.call_soon(lambda: out.append("immediate2"))
        out.append("immediate1")

    loop.call_soon(immediate)
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert out == ["immediate1", "child@check", "immediate2"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is new in 3.12")
def test_eager_task_factory(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]

    async def child() -> str:
        out.append("child-start")
        await asyncio.sleep(0)
        out.append("child-end")
        return "ok"

    async def main() -> str:
        task = loop.create_task(child())
        out.append("after-create")
        return await task

    assert loop.run_until_complete(main()) == "ok"
    assert out == ["child-start", "after-create", "child-end"]


# ---------------------------------------------------------------------------
# The iteration, phases and the drain
# ---------------------------------------------------------------------------


def test_phase_and_iteration_attributes(loop: phaseloop.EventLoop) -> None:
    seen: list[tuple[str | None, int]] = []
    assert loop.phase is None
    hook = loop.add_prepare_hook(lambda: seen.append((loop.phase, loop.iteration)))
    loop.call_soon(lambda: loop.call_soon(loop.stop))
    loop.run_forever()
    hook.cancel()
    assert seen == [("prepare", 1), ("prepare", 2)]
    assert loop.phase is None
    assert phaseloop.PHASES == ("timers", "pending", "idle", "prepare", "poll", "check", "close")


def test_a_loop_slot_never_hides_what_a_stdlib_class_defines() -> None:
    slots = phaseloop.EventLoop.__slots__
    assert {name for name in slots for base in phaseloop.EventLoop.__mro__[1:] if name in vars(base)} == set()
    assert len(set(slots)) == len(slots)


def test_the_loop_keeps_what_it_and_the_stdlib_set_in_slots() -> None:
    """No instance dict through a loop's life: an attribute in one is read the slow way (and
    on 3.13 it slows every other). If a new CPython sets one these miss, add it to
    ``loop._STDLIB_LOOP_NAMES``; the slot for one of phaseloop's goes in ``__slots__``."""
    import signal

    loop = phaseloop.new_event_loop()
    seen: list[dict[str, Any]] = []

    async def agen() -> Any:
        yield 1

    async def main() -> None:
        running = asyncio.get_running_loop()
        loop.set_debug(True)
        await asyncio.sleep(0)
        loop.set_debug(False)
        node.set_timeout(lambda: None, 0)
        node.set_immediate(lambda: None)
        loop.call_later(0.001, lambda: None).cancel()
        loop.call_soon_threadsafe(lambda: None)
        assert await running.run_in_executor(None, int, "7") == 7
        await running.getaddrinfo("127.0.0.1", 0)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        assert await reader.read() == b""
        writer.close()
        udp, _ = await running.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        udp.sendto(b"x", udp.get_extra_info("sockname"))
        udp.close()
        read_end, write_end = os.pipe()
        os.close(write_end)
        pipe, _ = await running.connect_read_pipe(asyncio.Protocol, os.fdopen(read_end, "rb", 0))
        pipe.close()
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        assert await process.wait() == 0
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.remove_signal_handler(signal.SIGUSR1)
        gen = agen()
        assert await gen.__anext__() == 1
        server.close()
        await server.wait_closed()
        seen.append(dict(vars(loop)))

    try:
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    seen.append(dict(vars(loop)))
    assert seen == [{}, {}]


def test_hooks_run_in_their_phases_in_libuv_order(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    hooks = [
        loop.add_check_hook(lambda: out.append(f"check-hook@{loop.phase}")),
        loop.add_idle_hook(lambda: out.append(f"idle-hook@{loop.phase}")),
        loop.add_prepare_hook(lambda: out.append(f"prepare-hook@{loop.phase}")),
    ]
    loop.call_soon(lambda: out.append(f"immediate@{loop.phase}"))
    loop.call_soon(loop.stop)
    loop.run_forever()
    for hook in hooks:
        hook.cancel()
    assert out == ["idle-hook@idle", "prepare-hook@prepare", "check-hook@check", "immediate@check"]


def test_idle_hook_forces_zero_poll_timeout_and_keeps_alive(loop: phaseloop.EventLoop) -> None:
    count = 0

    def idle() -> None:
        nonlocal count
        count += 1
        if count == 50:
            hook.cancel()

    hook = loop.add_idle_hook(idle)
    assert loop.is_alive()
    start = time.monotonic()
    loop.run_while_alive()
    assert count == 50
    assert not loop.is_alive()
    assert time.monotonic() - start < 5  # 50 iterations that never blocked


def test_unref_hook_does_not_keep_alive(loop: phaseloop.EventLoop) -> None:
    hook = loop.add_check_hook(lambda: None).unref()
    assert not hook.has_ref()
    assert not loop.is_alive()
    hook.ref()
    assert loop.is_alive()
    hook.cancel()
    assert hook.cancelled() and not loop.is_alive()


def test_drain_runs_ticks_before_microtasks_and_repeats(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []

    def main() -> None:
        node.queue_microtask(lambda: (out.append("m1"), node.next_tick(lambda: out.append("t-from-m1"))))
        node.next_tick(lambda: (out.append("t1"), node.queue_microtask(lambda: out.append("m-from-t1"))))
        node.queue_microtask(lambda: out.append("m2"))
        node.next_tick(lambda: out.append("t2"))

    node.run(main)
    assert out == ["t1", "t2", "m1", "m2", "m-from-t1", "t-from-m1"]


def test_stop_finishes_the_iteration(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []

    def first() -> None:
        loop.stop()
        out.append("first")

    loop.call_soon(first)
    loop.call_soon(lambda: out.append("second"))
    loop.run_forever()
    assert out == ["first", "second"]
    assert not loop.is_running()


def _spin_until(loop: phaseloop.EventLoop, flag: asyncio.Event, start: Callable[[], None]) -> int:
    """Spin on sleep(0) (zero-timeout polls only) until ``flag`` is set; return the spin count."""

    async def main() -> int:
        start()
        spins = 0
        while not flag.is_set():
            await asyncio.sleep(0)
            spins += 1
        return spins

    return loop.run_until_complete(main())


def test_threadsafe_call_reaches_a_spinning_loop(loop: phaseloop.EventLoop) -> None:
    # The poll phase may skip epoll_wait while only the self-pipe is registered; a post
    # from another thread must still be seen by one of the zero-timeout polls.
    flag = asyncio.Event()
    thread = threading.Thread(target=lambda: (time.sleep(0.01), loop.call_soon_threadsafe(flag.set)))
    assert _spin_until(loop, flag, thread.start) > 0
    thread.join()


@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32", reason="POSIX signals")
def test_signal_handler_reaches_a_spinning_loop(loop: phaseloop.EventLoop) -> None:
    import signal

    flag = asyncio.Event()
    phases: list[str | None] = []

    def handler() -> None:
        phases.append(loop.phase)
        flag.set()

    loop.add_signal_handler(signal.SIGUSR1, handler)
    try:
        _spin_until(loop, flag, lambda: os.kill(os.getpid(), signal.SIGUSR1))
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert phases == ["poll"]


def _record_polls(loop: phaseloop.EventLoop) -> list[float | None]:
    """The timeout of every poll phase from now on."""
    polls: list[float | None] = []
    original = loop._run_poll

    def run_poll(timeout: float | None) -> None:
        polls.append(timeout)
        original(timeout)

    loop._run_poll = run_poll  # type: ignore[method-assign]
    return polls


def test_poll_blocks_until_the_timer(loop: phaseloop.EventLoop) -> None:
    polls = _record_polls(loop)
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    # R3: one blocking wait of about the timer's delay, never a spin of zero timeouts.
    assert len(polls) == 1
    assert polls[0] is not None and 0.03 < polls[0] <= 0.05


def _record_fine_waits(loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """How long each microsecond wait of the poll phase is set to last: select()'s timeout,
    or where the loop has a timerfd (opened here if it would be at the first short wait),
    the time to the deadline it is armed to."""
    if loop._run_poll != loop._poll_epoll:
        pytest.skip("the microsecond wait is the epoll poll phase's")
    import phaseloop.loop as loop_module

    if loop._deadline_later:
        loop._open_libc_timerfd()
    waits: list[float] = []
    if loop._deadline_fd is None:
        select = loop_module._select

        def recording_select(*args: Any) -> Any:
            waits.append(args[3])
            return select(*args)

        monkeypatch.setattr(loop_module, "_select", recording_select)
    else:
        arm = loop._arm_deadline

        def recording_arm(fd: int, when: float) -> object:
            waits.append(when - time.monotonic())
            return arm(fd, when)

        monkeypatch.setattr(loop, "_arm_deadline", recording_arm)
    return waits


def test_short_poll_timeout_waits_to_the_microsecond(
    loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 3.5 ms timer: epoll_wait would sleep 4 ms (whole milliseconds, rounded up);
    # the poll phase waits in select() for the timer's own remaining time instead.
    waits = _record_fine_waits(loop, monkeypatch)
    fired: list[str] = []
    loop.call_later(0.0035, lambda: (fired.append("timer"), loop.stop()))
    loop.run_forever()
    assert fired == ["timer"]
    assert len(waits) >= 1 and all(0 < wait <= 0.0035 for wait in waits)
    assert any(wait * 1000 != int(wait * 1000) for wait in waits)  # not whole milliseconds


def test_node_timer_poll_timeout_is_whole_milliseconds_as_libuv(loop: phaseloop.EventLoop) -> None:
    # libuv waits (expiry - now) whole milliseconds for a Node timer; the microsecond
    # wait must not wake it sooner than that.
    async def main() -> None:
        fired = loop.create_future()
        node.set_timeout(lambda: fired.set_result(None), 3)
        await fired

    polls = _record_polls(loop)
    loop.run_until_complete(main())
    waits = [timeout for timeout in polls if timeout]
    assert waits, polls
    for timeout in waits:
        assert abs(timeout * 1000 - round(timeout * 1000)) < 0.01, waits
        assert 0.5 < timeout * 1000 < 3.5, waits


def test_short_poll_timeout_still_dispatches_io(
    loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = _record_fine_waits(loop, monkeypatch)
    rsock, wsock = socket.socketpair()
    out: list[str] = []
    try:

        def on_readable() -> None:
            out.append(f"read {rsock.recv(10)!r} in {loop.phase}")
            loop.remove_reader(rsock)

        loop.add_reader(rsock, on_readable)
        wsock.send(b"x")  # ready before the wait: select() returns at once, epoll collects it
        loop.call_later(0.02, lambda: (out.append("timer"), loop.stop()))
        loop.run_forever()
    finally:
        rsock.close()
        wsock.close()
    assert out == ["read b'x' in poll", "timer"]
    assert waits and waits[0] <= 0.02


def _armed_deadlines(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every deadline a libc timerfd opened from now on is armed to."""
    armed: list[float] = []
    import phaseloop.deadline as deadline_module

    open_timer = deadline_module.open_deadline_timer

    def recording_open() -> Any:
        opened = open_timer()
        if opened is None:
            return None
        fd, arm = opened

        def recording_arm(fd: int, when: float) -> None:
            armed.append(when)
            arm(fd, when)

        return fd, recording_arm

    monkeypatch.setattr(deadline_module, "open_deadline_timer", recording_open)
    return armed


def test_short_waits_end_on_a_timerfd_on_linux(loop: phaseloop.EventLoop) -> None:
    # select()'s timeout ends up to the timer slack (50 us) late, a timerfd's expiry does
    # not. 3.13's os opens one with the loop; before 3.13 libc's is opened at the first
    # short wait. Elsewhere the loop has none, and select() times the wait.
    if loop._run_poll != loop._poll_epoll:
        pytest.skip("the microsecond wait is the epoll poll phase's")
    on_linux = sys.platform.startswith("linux")
    assert (loop._deadline_fd is not None) == (on_linux and hasattr(os, "timerfd_create"))
    assert loop._deadline_later == (on_linux and not hasattr(os, "timerfd_create"))
    loop.call_later(0.002, loop.stop)
    loop.run_forever()
    assert (loop._deadline_fd is not None) == on_linux
    assert not loop._deadline_later
    if loop._deadline_fd is not None:
        fd = loop._deadline_fd
        assert loop._fine_wait is not None and fd in loop._fine_wait
        os.fstat(fd)
        loop.close()
        with pytest.raises(OSError):
            os.fstat(fd)  # close() released it


def test_opening_the_timerfd_takes_its_time_off_the_first_wait(
    loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loading ctypes takes milliseconds: the first short wait arms the timer's own deadline,
    # not that deadline plus the load.
    if not loop._deadline_later:
        pytest.skip("only Linux before 3.13 opens the timerfd at the first short wait")
    armed = _armed_deadlines(monkeypatch)
    import phaseloop.deadline as deadline_module

    open_timer = deadline_module.open_deadline_timer

    def slow_open() -> Any:
        time.sleep(0.005)
        return open_timer()

    monkeypatch.setattr(deadline_module, "open_deadline_timer", slow_open)
    timer = loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert armed and abs(armed[0] - timer.when()) < 0.002, (armed, timer.when())


def test_short_waits_keep_select_where_libc_has_no_timerfd(
    loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not loop._deadline_later:
        pytest.skip("only Linux before 3.13 opens the timerfd at the first short wait")
    import phaseloop.deadline as deadline_module

    attempts: list[int] = []
    monkeypatch.setattr(deadline_module, "open_deadline_timer", lambda: attempts.append(1))
    fired: list[int] = []
    for i in range(1, 4):
        loop.call_later(0.002 * i, fired.append, i)
    loop.call_later(0.007, loop.stop)
    loop.run_forever()
    assert fired == [1, 2, 3]
    assert attempts == [1] and loop._deadline_fd is None and not loop._deadline_later


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")
def test_a_libc_timerfd_fires_at_the_deadline_it_is_armed_to() -> None:
    import select

    from phaseloop.deadline import open_deadline_timer

    opened = open_deadline_timer()
    assert opened is not None
    fd, arm = opened
    try:
        when = time.monotonic() + 0.003
        arm(fd, when)
        assert select.select([fd], [], [], 1.0)[0] == [fd]
        assert time.monotonic() >= when - 1e-6  # the clock time.monotonic() reads
        arm(fd, time.monotonic() + 10)  # re-arming clears the expiry
        assert select.select([fd], [], [], 0)[0] == []
        arm(fd, time.monotonic() - 1)  # a deadline already past: readable at once
        assert select.select([fd], [], [], 1.0)[0] == [fd]
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        arm(fd, time.monotonic() + 1)


def test_a_fired_deadline_does_not_end_the_next_short_wait(
    loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A timerfd stays readable once it has fired until it is re-armed. If the next wait
    # armed it without clearing that, select() would return at once and the loop would
    # spin until the next deadline: hundreds of waits instead of one per timer.
    waits = _record_fine_waits(loop, monkeypatch)
    polls = _record_polls(loop)
    fired: list[int] = []
    for i in range(1, 4):
        loop.call_later(0.003 * i, fired.append, i)
    loop.call_later(0.0105, loop.stop)
    loop.run_forever()
    assert fired == [1, 2, 3]
    assert len(polls) <= 12, polls
    assert len(waits) == len([timeout for timeout in polls if timeout]) >= 4, (waits, polls)


def test_poll_timeout_in_whole_milliseconds_past_select_range(
    loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An epoll fd past select()'s FD_SETSIZE, and timeouts of 50 ms or more, wait in epoll.
    waits = _record_fine_waits(loop, monkeypatch)
    loop._fine_wait = None
    fired: list[str] = []
    loop.call_later(0.002, lambda: (fired.append("timer"), loop.stop()))
    loop.run_forever()
    assert fired == ["timer"] and waits == []


# ---------------------------------------------------------------------------
# Liveness, run_while_alive and Node's lifetime
# ---------------------------------------------------------------------------


def test_is_alive_tracks_ref_handles(loop: phaseloop.EventLoop) -> None:
    assert not loop.is_alive()
    handle = loop.call_later(10, lambda: None)
    assert loop.is_alive()
    handle.cancel()
    assert not loop.is_alive()
    rsock, wsock = socket.socketpair()
    loop.add_reader(rsock, lambda: None)
    assert loop.is_alive()
    loop.remove_reader(rsock)
    rsock.close()
    wsock.close()
    assert not loop.is_alive()


def test_run_while_alive_returns_when_work_runs_out(loop: phaseloop.EventLoop) -> None:
    out: list[str] = []
    loop.call_later(0.002, lambda: out.append("timer"))
    loop.call_soon(lambda: out.append("immediate"))
    loop.run_while_alive()
    assert out == ["immediate", "timer"]
    assert not loop.is_running()


def test_node_run_returns_main_result_and_task_result() -> None:
    assert node.run(lambda: 7) == 7

    async def main() -> str:
        await asyncio.sleep(0.001)
        return "done"

    assert node.run(main) == "done"
    assert node.run(main()) == "done"


def test_node_run_main_task_that_can_never_finish() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nothing will ever resolve it

    with pytest.raises(RuntimeError, match="still waiting"):
        node.run(main)


def test_node_run_propagates_main_exception() -> None:
    def main() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        node.run(main)


def test_before_exit_can_revive_the_loop() -> None:
    out: list[str] = []
    rounds = 0

    def before_exit() -> None:
        nonlocal rounds
        out.append(f"beforeExit{rounds}")
        if rounds < 2:
            node.set_timeout(lambda: out.append("timer"), 1)
        rounds += 1

    def main() -> None:
        node.on_before_exit(before_exit)
        node.set_immediate(lambda: out.append("immediate"))

    node.run(main)
    assert out == ["immediate", "beforeExit0", "timer", "beforeExit1", "timer", "beforeExit2"]


def test_unref_immediate_alone_never_runs() -> None:
    out: list[str] = []

    def main() -> None:
        node.set_immediate(lambda: out.append("unref-immediate")).unref()
        node.queue_microtask(lambda: out.append("micro"))

    node.run(main)
    assert out == ["micro"]


def test_cleared_immediate_and_timeout_do_not_run_or_keep_alive() -> None:
    out: list[str] = []

    def main() -> None:
        node.clear_immediate(node.set_immediate(lambda: out.append("immediate")))
        node.clear_timeout(node.set_timeout(lambda: out.append("timeout"), 1))
        node.clear_interval(node.set_interval(lambda: out.append("interval"), 1))
        node.clear_timeout(None)
        node.clear_immediate(None)
        loop = asyncio.get_running_loop()
        assert isinstance(loop, phaseloop.EventLoop)
        out.append(f"alive={loop.is_alive()}")

    node.run(main)
    assert out == ["alive=False"]


def test_interval_runs_until_cleared() -> None:
    out: list[int] = []

    def main() -> None:
        def tick() -> None:
            out.append(len(out))
            if len(out) == 3:
                node.clear_interval(interval)

        interval = node.set_interval(tick, 2)

    node.run(main)
    assert out == [0, 1, 2]


def test_timeout_refresh_and_has_ref() -> None:
    out: list[str] = []

    def main() -> None:
        timer = node.set_timeout(lambda: out.append("fired"), 5)
        assert timer.has_ref()
        assert timer.unref() is timer and not timer.has_ref()
        timer.ref()
        node.set_timeout(lambda: (out.append("refresh"), timer.refresh()), 3)

    start = time.monotonic()
    node.run(main)
    assert out == ["refresh", "fired"]
    assert time.monotonic() - start >= 0.007  # 3 ms, then 5 ms more after the refresh


def test_refresh_rearms_a_fired_timeout() -> None:
    out: list[str] = []

    def main() -> None:
        def fire() -> None:
            out.append("fired")
            if len(out) < 2:
                node.set_immediate(timer.refresh)

        timer = node.set_timeout(fire, 1)

    node.run(main)
    assert out == ["fired", "fired"]


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_node_functions_need_a_running_phaseloop() -> None:
    with pytest.raises(RuntimeError, match="no event loop is running"):
        node.set_timeout(lambda: None, 1)

    async def on_stock_loop() -> None:
        node.set_immediate(lambda: None)

    with pytest.raises(RuntimeError, match="needs a running phaseloop loop"):
        asyncio.run(on_stock_loop())


@pytest.mark.parametrize(
    "call",
    [
        lambda: node.set_timeout("not callable", 1),  # type: ignore[arg-type]
        lambda: node.set_interval(None, 1),  # type: ignore[arg-type]
        lambda: node.set_immediate(42),  # type: ignore[arg-type]
        lambda: node.next_tick(object()),  # type: ignore[arg-type]
        lambda: node.queue_microtask("x"),  # type: ignore[arg-type]
        lambda: node.clear_timeout("timer"),  # type: ignore[arg-type]
        lambda: node.clear_immediate(3),  # type: ignore[arg-type]
    ],
)
def test_node_functions_reject_bad_arguments(call: Callable[[], object]) -> None:
    def main() -> None:
        with pytest.raises(TypeError):
            call()

    node.run(main)


def test_loop_methods_reject_bad_arguments(loop: phaseloop.EventLoop) -> None:
    with pytest.raises(TypeError, match="callable"):
        loop.call_soon(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        loop.call_soon(123, loop.create_future())  # type: ignore[arg-type]  # the cb(future) route
    with pytest.raises(TypeError, match="callable"):
        loop.call_later(1, 123, loop.create_future())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        loop.call_later(1, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number"):
        loop.call_at("soon", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        loop.call_at(float("nan"), lambda: None)
    with pytest.raises(TypeError, match="callable"):
        loop.call_soon_threadsafe(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        loop.run_in_executor(None, "nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        loop.add_idle_hook(5)  # type: ignore[arg-type]


def test_bad_loop_options() -> None:
    unraisable: list[Any] = []
    with mock.patch.object(sys, "unraisablehook", unraisable.append):
        with pytest.raises(ValueError, match="wakeups"):
            phaseloop.new_event_loop(wakeups="eventually")
        gc.collect()
    assert unraisable == []  # the stdlib's __del__ found the half-made loop closed
    with pytest.raises(TypeError, match="threadpool_size"):
        phaseloop.new_event_loop(threadpool_size="4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threadpool_size"):
        phaseloop.new_event_loop(threadpool_size=-1)


def test_closed_loop_refuses_work() -> None:
    loop = phaseloop.new_event_loop()
    loop.close()
    loop.close()  # twice is fine
    for call in (
        lambda: loop.call_soon(print),
        lambda: loop.call_later(1, print),
        lambda: loop.call_soon_threadsafe(print),
        lambda: loop.run_in_executor(None, print),
        lambda: loop.add_check_hook(print),
        lambda: loop.run_forever(),
    ):
        with pytest.raises(RuntimeError, match="closed"):
            call()


# ---------------------------------------------------------------------------
# Faults: exceptions in every phase go to the handler and the loop goes on
# ---------------------------------------------------------------------------


def test_exceptions_in_every_phase_reach_the_handler(loop: phaseloop.EventLoop) -> None:
    errors: list[str] = []
    loop.set_exception_handler(lambda _, ctx: errors.append(f"{ctx['exception']}@{loop.phase}"))
    rsock, wsock = socket.socketpair()

    def fail(name: str) -> Callable[..., None]:
        def raiser(*_: object) -> None:
            raise RuntimeError(name)

        return raiser

    def in_poll() -> None:
        loop.remove_reader(rsock)
        raise RuntimeError("reader")

    hooks = [loop.add_idle_hook(fail("idle")), loop.add_prepare_hook(fail("prepare"))]

    def main() -> None:
        node.next_tick(fail("tick"))
        node.queue_microtask(fail("micro"))
        loop.call_soon(fail("immediate"))
        loop.call_later(0, fail("timer"))
        node.set_timeout(fail("node-timer"), 1)
        loop.add_reader(rsock, in_poll)
        wsock.send(b"x")
        loop.call_later(0.01, lambda: [hook.cancel() for hook in hooks])

    try:
        loop._script = main
        loop.run_while_alive()
    finally:
        rsock.close()
        wsock.close()
    for expected in ("tick", "micro", "immediate@check", "timer@timers", "node-timer@timers", "reader@poll"):
        assert any(e.startswith(expected) for e in errors), (expected, errors)
    assert "idle@idle" in errors and "prepare@prepare" in errors


@pytest.mark.parametrize("debug", [False, True])
def test_failed_task_is_released_at_once_not_by_the_gc(debug: bool) -> None:
    """A task that failed unobserved is reported as soon as it is dropped, as on the stock loop.

    A failed coroutine's frame keeps its callers' frames alive (f_back); a loop frame that still
    held the task's step in a local would keep the task in a cycle until the cycle collector ran.
    """
    loop = phaseloop.new_event_loop(debug=debug)
    reported: list[str] = []
    loop.set_exception_handler(lambda _, ctx: reported.append(ctx["message"]))

    async def fails() -> None:
        raise ZeroDivisionError

    async def main() -> None:
        loop.create_task(fails())
        await asyncio.sleep(0)
        reported.append("after-sleep")

    gc.disable()
    try:
        loop.run_until_complete(main())
    finally:
        gc.enable()
        loop.close()
    assert reported[0] == "Task exception was never retrieved"
    assert reported[-1] == "after-sleep"


@pytest.mark.parametrize("debug", [False, True])
def test_check_phase_drops_the_step_it_ran_before_draining(debug: bool) -> None:
    """While the wake-ups caused by a task's last step are drained, nothing holds that step.

    (A held step keeps the task, its exception and that exception's frames alive: anyio's
    test_exception_refcycles_parent_task found it.)
    """
    loop = phaseloop.new_event_loop(debug=debug)
    held: list[list[str]] = []

    async def child() -> None:
        await asyncio.sleep(0)  # its last step runs as an immediate

    async def main() -> None:
        task = loop.create_task(child())
        await task  # resumed by a wake-up drained right after the child's last step
        held.append([type(r).__name__ for r in gc.get_referrers(task) if "Step" in type(r).__name__])

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert held == [[]]


def test_debug_mode_reports_slow_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    loop = phaseloop.new_event_loop(debug=True)
    loop.slow_callback_duration = 0.01
    try:
        loop.call_soon(busy, 20)
        loop.call_soon(loop.stop)
        with caplog.at_level("WARNING", logger="asyncio"):
            loop.run_forever()
    finally:
        loop.close()
    assert any("took" in record.getMessage() and "busy" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------------------
# The thread pool behind run_in_executor
# ---------------------------------------------------------------------------


def test_pool_size_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHASELOOP_THREADPOOL_SIZE", raising=False)
    for option, size in ((None, 4), (0, 1), (2, 2), (5000, 1024)):
        loop = phaseloop.new_event_loop(threadpool_size=option)
        assert loop.threadpool_size == size
        loop.close()
    monkeypatch.setenv("PHASELOOP_THREADPOOL_SIZE", "0")
    loop = phaseloop.new_event_loop()
    assert loop.threadpool_size == 1
    loop.close()
    monkeypatch.setenv("PHASELOOP_THREADPOOL_SIZE", "many")
    loop = phaseloop.new_event_loop()
    with pytest.raises(ValueError, match="PHASELOOP_THREADPOOL_SIZE"):
        loop.run_in_executor(None, print)
    loop.close()


def test_pool_of_one_completes_in_submission_order() -> None:
    loop = phaseloop.new_event_loop(threadpool_size=1)
    out: list[str] = []
    try:

        async def main() -> None:
            slow = loop.run_in_executor(None, busy, 30)
            fast = loop.run_in_executor(None, busy, 0)
            slow.add_done_callback(lambda _: out.append("slow"))
            fast.add_done_callback(lambda _: out.append("fast"))
            await asyncio.gather(slow, fast)

        loop.run_until_complete(main())
    finally:
        loop.close()
    assert out == ["slow", "fast"]


def test_pool_carries_contextvars_and_errors(loop: phaseloop.EventLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def job() -> str:
        return var.get()

    def failing() -> None:
        raise KeyError("inside the worker")

    async def main() -> str:
        var.set("from-task")
        with pytest.raises(KeyError, match="inside the worker"):
            await loop.run_in_executor(None, failing)
        return await asyncio.to_thread(job)

    assert loop.run_until_complete(main()) == "from-task"


def test_pending_jobs_keep_loop_alive_and_shutdown_cancels_queued(loop: phaseloop.EventLoop) -> None:
    started = threading.Event()
    release = threading.Event()

    def blocker() -> str:
        started.set()
        release.wait()
        return "ran"

    async def main() -> list[object]:
        loop._pool_option = 1
        running = loop.run_in_executor(None, blocker)
        queued = loop.run_in_executor(None, print)
        assert loop.is_alive()
        while not started.is_set():
            await asyncio.sleep(0.001)
        threading.Timer(0.01, release.set).start()
        await loop.shutdown_default_executor()
        return [await running, queued.cancelled()]

    assert loop.run_until_complete(main()) == ["ran", True]
    assert not loop.is_alive()


def test_close_releases_threads_and_fds() -> None:
    # The loop's own threads, not a count: a thread an earlier test left may end meanwhile.
    before_threads = set(threading.enumerate())
    before_fds = len(os.listdir("/proc/self/fd"))
    loop = phaseloop.new_event_loop()
    loop.run_until_complete(loop.run_in_executor(None, os.getpid))
    loop.close()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before_threads and time.monotonic() < deadline:
        time.sleep(0.01)
    gc.collect()
    assert not set(threading.enumerate()) - before_threads
    assert len(os.listdir("/proc/self/fd")) == before_fds


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def test_entry_points_give_phaseloop() -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__name__

    assert phaseloop.run(which()) == "EventLoop"
    with asyncio.Runner(loop_factory=phaseloop.new_event_loop) as runner:
        assert runner.run(which()) == "EventLoop"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(phaseloop.EventLoopPolicy(wakeups="immediate"))
        try:
            loop = asyncio.new_event_loop()
            assert isinstance(loop, phaseloop.EventLoop) and loop.wakeups == "immediate"
            loop.close()
            assert asyncio.run(which()) == "EventLoop"
        finally:
            asyncio.set_event_loop_policy(old)


def test_importing_phaseloop_raises_no_deprecation_warning() -> None:
    import subprocess

    # Every name loads on first use: touch them all (the policy class is made in entry.py).
    code = "import phaseloop, phaseloop.node\nfor name in phaseloop.__all__: getattr(phaseloop, name)"
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_package_and_pytest_plugin_import_nothing_until_used() -> None:
    # pytest imports phaseloop.pytest_plugin (and so the package) in every run: neither
    # may pull in asyncio or the loop before a loop is asked for.
    code = (
        "import sys, pytest\n"
        "import phaseloop, phaseloop.pytest_plugin\n"
        "assert 'asyncio' not in sys.modules and 'phaseloop.loop' not in sys.modules, sorted(sys.modules)\n"
        "assert phaseloop.__version__ and 'phaseloop.loop' not in sys.modules\n"
        "loop = phaseloop.new_event_loop()\n"
        "assert isinstance(loop, phaseloop.EventLoop) and 'phaseloop.loop' in sys.modules\n"
        "loop.close()\n"
        "from phaseloop import EventLoopPolicy, Timeout, run\n"
        "assert set(phaseloop.__all__) <= set(dir(phaseloop))\n"
    )
    _run_python(code)


def _run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter with this one's path; its stdout, once it succeeded."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_fs_node_and_shim_load_on_first_use() -> None:
    code = (
        "import sys, phaseloop\n"
        "lazy = ('phaseloop.fs', 'phaseloop.node', 'phaseloop.shim')\n"
        "assert not any(name in sys.modules for name in lazy), sorted(sys.modules)\n"
        "assert phaseloop.fs.read_bytes and phaseloop.node.next_tick\n"
        "assert phaseloop.co and phaseloop.coroutine\n"
        "assert all(name in sys.modules for name in lazy)\n"
        "try:\n    phaseloop.missing\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    assert _run_python(code).strip() == "module 'phaseloop' has no attribute 'missing'"


def test_transports_and_thread_pool_load_on_first_use() -> None:
    # A loop that only runs tasks imports neither (docs/performance.md: their memory is 30 %
    # of phaseloop's modules'); the first transport or pool job brings each one in.
    code = (
        "import asyncio, socket, sys, phaseloop\n"
        "lazy = ('phaseloop.transports', 'phaseloop.threadpool', 'queue')\n"
        "async def tasks_only():\n"
        "    await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0.001))\n"
        "phaseloop.run(tasks_only())\n"
        "assert not any(name in sys.modules for name in lazy), [n for n in lazy if n in sys.modules]\n"
        "async def echo():\n"
        "    a, b = socket.socketpair()\n"
        "    reader, writer = await asyncio.open_connection(sock=a)\n"
        "    b.send(b'x')\n"
        "    data = await reader.read(1)\n"
        "    writer.close()\n"
        "    b.close()\n"
        "    return data, 'phaseloop.threadpool' in sys.modules\n"
        "assert phaseloop.run(echo()) == (b'x', False)\n"
        "assert 'phaseloop.transports' in sys.modules\n"
        "async def pool():\n"
        "    return await asyncio.get_running_loop().run_in_executor(None, sum, (1, 2))\n"
        "assert phaseloop.run(pool()) == 3 and 'phaseloop.threadpool' in sys.modules\n"
        "print('ok')\n"
    )
    assert _run_python(code).strip() == "ok"


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.booleans()), min_size=1, max_size=300))
@settings(max_examples=60, deadline=None)
def test_timers_run_by_deadline_then_creation_order(specs: list[tuple[int, bool, bool]]) -> None:
    # Deadlines in the past (all due in the first timers phase), from a few values so
    # that ties are common, int and float alike (5 and 5.0 are the same deadline).
    # Cancelling most of them also exercises the heap's compaction.
    loop = phaseloop.new_event_loop()
    try:
        base = int(loop.time()) - 100
        fired: list[int] = []
        expected: list[tuple[int, int]] = []
        for index, (slot, as_float, cancel) in enumerate(specs):
            when = float(base + slot) if as_float else base + slot
            handle = loop.call_at(when, fired.append, index)
            if cancel:
                handle.cancel()
            else:
                expected.append((base + slot, index))
        loop.call_at(base + 10, loop.stop)
        loop.run_forever()
        assert fired == [index for _, index in sorted(expected)]
        assert not loop.is_alive()
    finally:
        loop.close()


class _ShiftedClock:
    """time.monotonic() plus an offset the test moves on, as the loop and loop.time() read it."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._real = time.monotonic

    def __call__(self) -> float:
        return self._real() + self.offset

    @contextlib.contextmanager
    def installed(self) -> Iterator[_ShiftedClock]:
        shifted = types.SimpleNamespace(**{**vars(time), "monotonic": self})
        with (
            mock.patch.object(phaseloop.loop, "_monotonic", self),
            mock.patch.object(phaseloop.loop, "time", shifted),
            mock.patch.object(asyncio.base_events, "time", shifted),
        ):
            yield self


def _one_iteration(loop: phaseloop.EventLoop) -> None:
    loop.call_soon(loop.stop)
    loop.run_forever()


_FAR_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 60), st.booleans()),
        st.tuples(st.just("wait"), st.integers(0, 40), st.just(False)),
    ),
    min_size=1,
    max_size=200,
)


@given(_FAR_STEPS)
@settings(max_examples=60, deadline=None)
def test_far_timers_run_by_deadline_then_creation_order(steps: list[tuple[str, int, bool]]) -> None:
    # Deadlines on a 2 s grid up to 120 s ahead: the far ones wait in buckets and move into
    # the heap as the (shifted) clock reaches them, while later timers of the same deadlines
    # join them there. Every deadline is in the future when its timer is made, so the
    # timers must fire in deadline order, ties in creation order, whatever the level.
    clock = _ShiftedClock()
    with clock.installed():
        loop = phaseloop.new_event_loop()
        try:
            base = float(int(loop.time()) + 1)
            fired: list[int] = []
            expected: list[tuple[float, int]] = []
            went_far = False
            for index, (op, number, cancel) in enumerate(steps):
                if op == "wait":
                    clock.offset += number
                    _one_iteration(loop)
                    continue
                when = base + 2 * number + 2 * int(clock.offset)
                handle = loop.call_at(when, fired.append, index)
                went_far = went_far or loop._far_count > 0
                if cancel:
                    handle.cancel()
                else:
                    expected.append((when, index))
            clock.offset += 1000
            _one_iteration(loop)
            assert fired == [index for _, index in sorted(expected)]
            assert not loop.is_alive() and loop._far_count == 0 and not loop._far
            if any(op == "add" and number > 12 for op, number, _ in steps):
                assert went_far  # the test reaches the buckets
        finally:
            loop.close()


@pytest.mark.parametrize("delay", [1.0, 1000.0], ids=["heap", "far"])
def test_cancelling_every_timer_leaves_none_counted(delay: float) -> None:
    # The cancel that sets off a compaction is made before TimerHandle.cancel() marks the
    # handle cancelled: a compaction that kept it as live left the counts one off, and the
    # loop alive for good once the timer was popped (seen with 300 heap timers).
    loop = phaseloop.new_event_loop()
    try:
        handles = [loop.call_later(delay + i / 1000, lambda: None) for i in range(300)]
        for handle in handles:
            handle.cancel()
        assert not loop.is_alive()
        assert loop._wait_timeout() is None
        assert (loop._timers_cancelled, loop._far_cancelled) == (len(loop._timers), loop._far_count)
    finally:
        loop.close()


def test_far_timers_keep_the_loop_alive_and_set_the_poll_timeout() -> None:
    loop = phaseloop.new_event_loop()
    try:
        handles = [loop.call_later(1000 + i, lambda: None) for i in range(300)]
        assert loop._far_count == 300 and not loop._timers
        assert loop.is_alive()
        # The poll waits for the earliest far deadline itself, not for its bucket.
        assert 999 < loop._wait_timeout() <= 1000  # type: ignore[operator]
        handles[0].cancel()  # the earliest: the wait may end early, never late
        assert 999 < loop._wait_timeout() <= 1000  # type: ignore[operator]
        for handle in handles[1:200]:
            handle.cancel()
        # More than half cancelled: they were dropped (not just counted), at the 151st.
        assert (loop._far_count, loop._far_cancelled) == (149, 49)
        assert sum(map(len, loop._far.values())) == loop._far_count
        assert 1150 < loop._wait_timeout() <= 1151  # type: ignore[operator]
        assert loop.is_alive()
        for handle in handles[200:]:
            handle.cancel()
        assert not loop.is_alive()
        assert loop._wait_timeout() is None
    finally:
        loop.close()


def test_near_timer_goes_to_the_heap_after_a_long_wait() -> None:
    # No timers phase for 100 s (the loop not running): the far boundary is stale, and a
    # timer 1 s ahead must still go to the heap, not wait in a bucket for the next advance.
    clock = _ShiftedClock()
    with clock.installed():
        loop = phaseloop.new_event_loop()
        try:
            clock.offset += 100
            loop.call_later(1, lambda: None)
            assert loop._far_count == 0 and len(loop._timers) == 1
            loop.call_later(100, lambda: None)
            assert loop._far_count == 1
        finally:
            loop.close()


def test_far_timers_in_debug_mode(loop: phaseloop.EventLoop) -> None:
    loop.set_debug(True)
    handles = [loop.call_later(1000, lambda: None) for _ in range(3)]
    assert loop._far_count == 3
    for handle in handles:
        handle.cancel()
    assert not loop.is_alive()


# How a test schedules a callback: as a timer, or with call_soon (each has its own fast path).
Schedule = Callable[[Any, Callable[..., object]], asyncio.Handle]
SCHEDULERS: dict[str, Schedule] = {
    "call_later": lambda loop, callback: loop.call_later(0, callback),
    "call_soon": lambda loop, callback: loop.call_soon(callback),
    "call_soon, cb(future)": lambda loop, callback: loop.call_soon(
        lambda future: callback(), loop.create_future()
    ),
    "call_soon, partial": lambda loop, callback: loop.call_soon(functools.partial(callback)),
}


@pytest.fixture(params=sorted(SCHEDULERS))
def schedule(request: pytest.FixtureRequest) -> Schedule:
    return SCHEDULERS[request.param]


@pytest.mark.parametrize("debug_after", [False, True], ids=["fast", "debug-after-queueing"])
def test_callbacks_each_run_in_a_context_of_their_own(
    loop: phaseloop.EventLoop, schedule: Schedule, debug_after: bool
) -> None:
    # Each callback runs in a copy of the context it was queued in, here an empty one
    # (pytest's has decimal's): a variable one callback sets must not reach another, nor
    # the code that queued them. Timers and call_soon's handles made where no variable is
    # set share one empty context until they run (handles.Timer, handles.Handle); a
    # cb(future) handle gets its copy at once. Debug mode, switched on while they wait,
    # runs them through Handle._run instead of the loop's inlined run.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[str, str]] = []

    def first() -> None:
        seen.append(("first", var.get()))
        var.set("first")

    def second() -> None:
        seen.append(("second", var.get()))
        var.set("second")

    handles = contextvars.Context().run(lambda: [schedule(loop, first), schedule(loop, second)])
    timers = schedule is SCHEDULERS["call_later"]
    shared = schedule is not SCHEDULERS["call_soon, cb(future)"]
    assert all((handle._context is SHARED_EMPTY_CONTEXT) is shared for handle in handles)  # type: ignore[attr-defined]
    loop.set_debug(debug_after)
    loop.call_later(0, loop.stop)
    loop.run_forever()
    assert seen == [("first", "unset"), ("second", "unset")]
    assert var.get() == "unset"
    assert not SHARED_EMPTY_CONTEXT
    assert all(isinstance(handle, asyncio.TimerHandle if timers else asyncio.Handle) for handle in handles)
    assert repr(handles[0]).startswith("<TimerHandle" if timers else "<Handle")
    if sys.version_info >= (3, 12):  # Handle.get_context(): the context the callback ran in
        assert handles[0].get_context()[var] == "first"
        assert handles[1].get_context()[var] == "second"


def test_callback_queued_in_a_context_runs_in_a_copy_of_it(
    loop: phaseloop.EventLoop, schedule: Schedule
) -> None:
    var: contextvars.ContextVar[list[str]] = contextvars.ContextVar("var")
    seen: list[list[str]] = []
    value: list[str] = []

    def make() -> None:
        var.set(value)
        schedule(loop, lambda: (seen.append(var.get()), var.set([])))
        schedule(loop, loop.stop)

    context = contextvars.copy_context()
    context.run(make)
    loop.run_forever()
    assert seen == [value] and seen[0] is value
    assert context[var] is value  # the copy's change stayed in the copy


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Handle.get_context() is new in 3.12")
def test_pending_callback_get_context_is_its_own(loop: phaseloop.EventLoop, schedule: Schedule) -> None:
    # Before it runs, a handle's get_context() gives a context of its own: a variable
    # set in it reaches that handle's callback and no other's.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []
    marked, other = contextvars.Context().run(
        lambda: [schedule(loop, lambda: seen.append(var.get())) for _ in range(2)]
    )
    context = marked.get_context()
    assert context is marked.get_context()
    context.run(var.set, "marked")
    loop.call_later(0, loop.stop)
    loop.run_forever()
    assert seen == ["marked", "unset"]
    assert marked.get_context() is context
    assert other.get_context() is not context
    assert not SHARED_EMPTY_CONTEXT


# ---------------------------------------------------------------------------
# Readers and writers: the stdlib's bookkeeping without its KeyError (EventLoop._key_for)
# ---------------------------------------------------------------------------


def _reader_writer_story(loop: Any) -> list[object]:
    """What _add_reader/_remove_reader/_add_writer/_remove_writer return and leave registered."""
    a, b = socket.socketpair()
    fd = a.fileno()
    story: list[object] = []

    def registered(target: Any = fd) -> object:
        key = loop._selector.get_map().get(target)
        if key is None:
            return None
        reader, writer = key.data
        return (key.events, reader is not None, writer is not None)

    def outcome(call: Callable[[], object]) -> object:
        try:
            result = call()
        except (ValueError, RuntimeError) as exc:
            return type(exc).__name__
        return result if isinstance(result, bool) else type(result).__name__

    try:
        story += [
            outcome(lambda: loop._remove_reader(fd)),
            outcome(lambda: loop._remove_writer(fd)),
            registered(),
        ]
        first = loop._add_reader(fd, print)
        second = loop._add_reader(fd, print)  # replaces the first, which is cancelled
        story += [first.cancelled(), second.cancelled(), registered()]
        writer = loop._add_writer(fd, print)
        story += [registered(), outcome(lambda: loop._remove_reader(fd)), second.cancelled(), registered()]
        story += [outcome(lambda: loop._remove_reader(fd)), outcome(lambda: loop._remove_writer(fd))]
        story += [writer.cancelled(), registered(), outcome(lambda: loop._remove_writer(fd))]
        # A file object rather than its descriptor.
        story += [outcome(lambda: loop._add_writer(a, print)), registered(a), registered()]
        story += [outcome(lambda: loop._remove_writer(a)), registered(a)]
        # An invalid descriptor, and one never opened.
        for remove in (loop._remove_reader, loop._remove_writer):
            story += [outcome(functools.partial(remove, -1)), outcome(functools.partial(remove, 10**6))]
        story += [outcome(lambda: loop._add_reader(-1, print)), outcome(lambda: loop._add_writer(-1, print))]
        loop._add_reader(fd, print)
        loop.close()
        story += [outcome(lambda: loop._remove_reader(fd)), outcome(lambda: loop._add_writer(fd, print))]
    finally:
        loop.close()
        a.close()
        b.close()
    return story


def test_readers_and_writers_are_registered_as_on_the_stock_loop() -> None:
    story = _reader_writer_story(phaseloop.new_event_loop())
    assert story == _reader_writer_story(asyncio.SelectorEventLoop())
    assert story[:3] == [False, False, None]
    assert story[-2:] == [False, "RuntimeError"]


def test_readers_and_writers_on_a_selector_without_the_stdlib_map() -> None:
    class Wrapped(selectors.BaseSelector):
        """A user's selector that is not one of the stdlib's: _key_for asks get_map()."""

        def __init__(self) -> None:
            self.inner = selectors.DefaultSelector()

        def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
            return self.inner.register(fileobj, events, data)

        def unregister(self, fileobj: Any) -> selectors.SelectorKey:
            return self.inner.unregister(fileobj)

        def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
            return self.inner.modify(fileobj, events, data)

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            return self.inner.select(timeout)

        def close(self) -> None:
            self.inner.close()

        def get_map(self) -> Any:
            return self.inner.get_map()

    loop = phaseloop.EventLoop(selector=Wrapped())
    assert loop._fd_to_key is None
    assert _reader_writer_story(loop) == _reader_writer_story(asyncio.SelectorEventLoop())


# ---------------------------------------------------------------------------
# Accepting connections: no task per connection (EventLoop._accept_connection)
# ---------------------------------------------------------------------------


def test_server_serves_each_connection_from_the_accept_callback(loop: phaseloop.EventLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[str, str | None, bool, str]] = []
    made: list[str | None] = []

    lost: list[asyncio.Future[None]] = []

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            made.append(loop.phase)
            self.transport = transport
            self.lost = loop.create_future()
            lost.append(self.lost)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(None)

    def factory() -> Echo:
        seen.append(("factory", loop.phase, asyncio.current_task() is None, var.get()))
        var.set("set by a factory")  # its own context: the next connection's factory sees none
        return Echo()

    async def main() -> list[bytes]:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        replies = []
        for text in (b"one", b"two"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(text)
            replies.append(await reader.readexactly(3))
            writer.close()
            await writer.wait_closed()
        await asyncio.gather(*lost)  # Python 3.11's wait_closed() does not wait for them
        server.close()
        await server.wait_closed()
        return replies

    assert loop.run_until_complete(main()) == [b"one", b"two"]
    assert seen == [("factory", "poll", True, "unset")] * 2
    assert made == ["poll", "poll"]
    assert var.get() == "unset"


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_accepted_sockets_are_like_socket_accept_made_them(
    loop: phaseloop.EventLoop, family: str, tmp_path: Any
) -> None:
    accepted: list[tuple[Any, Any, bool, Any]] = []
    accepts = 0

    class Listener(socket.socket):
        """A subclass's own accept() is called; a plain socket's is done inline."""

        def accept(self) -> tuple[socket.socket, Any]:
            nonlocal accepts
            conn = super().accept()  # until it raises BlockingIOError
            accepts += 1
            return conn

    class Seen(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            accepted.append((sock.family, sock.type, os.get_blocking(sock.fileno()), transport))

    async def serve(listener: socket.socket, address: Any) -> None:
        server = await loop.create_server(Seen, sock=listener)
        with socket.socket(listener.family) as client:
            client.setblocking(False)
            await loop.sock_connect(client, address)
            while len(accepted) < 1 + (listener is subclassed):
                await asyncio.sleep(0)
        server.close()
        await server.wait_closed()

    def listening(cls: type[socket.socket]) -> tuple[socket.socket, Any]:
        if family == "tcp":
            sock = cls(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
        else:
            sock = cls(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(tmp_path / f"{cls.__name__}.sock"))
        sock.listen()
        return sock, sock.getsockname()

    plain, plain_address = listening(socket.socket)
    subclassed, subclassed_address = listening(Listener)
    loop.run_until_complete(serve(plain, plain_address))
    assert accepts == 0
    loop.run_until_complete(serve(subclassed, subclassed_address))
    assert accepts == 1
    expected = socket.AF_INET if family == "tcp" else socket.AF_UNIX
    assert [row[:3] for row in accepted] == [(expected, socket.SOCK_STREAM, False)] * 2
    for *_, transport in accepted:
        transport.close()
    loop.run_until_complete(asyncio.sleep(0))


def test_server_factory_error_closes_the_connection_and_serving_goes_on(loop: phaseloop.EventLoop) -> None:
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    calls = 0

    lost = loop.create_future()

    class Served(asyncio.Protocol):
        def connection_lost(self, exc: BaseException | None) -> None:
            lost.set_result(None)

    def factory() -> asyncio.Protocol:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("no protocol for you")
        return Served()

    async def main() -> tuple[bytes, bool]:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = await reader.read(10)  # b"": the server closed it
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        await writer.drain()
        open_now = not reader.at_eof()
        writer.close()
        await writer.wait_closed()
        await lost
        server.close()
        await server.wait_closed()
        return first, open_now

    gc.collect()  # earlier tests' garbage is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)  # closed, not left to the collector
        assert loop.run_until_complete(main()) == (b"", True)
        gc.collect()
    assert [str(warning.message) for warning in caught if warning.category is ResourceWarning] == []
    assert calls == 2
    assert errors == []  # outside debug mode the stdlib reports nothing either


def test_accept_out_of_descriptors_goes_to_the_stdlib_handling(loop: phaseloop.EventLoop) -> None:
    import errno

    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    class Exhausted:
        family, type, proto = listener.family, listener.type, listener.proto

        def accept(self) -> Any:
            raise OSError(errno.EMFILE, "Too many open files")

        def fileno(self) -> int:
            return listener.fileno()

        def getsockname(self) -> Any:
            return listener.getsockname()

    try:
        loop._accept_connection(asyncio.Protocol, Exhausted(), None, None, 100)
        # The stdlib's handling: reported (once per try of its accept loop), and retried later.
        assert errors and {context["message"] for context in errors} == {
            "socket.accept() out of system resource"
        }
        assert loop._timers
    finally:
        listener.close()
