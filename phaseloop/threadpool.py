"""A libuv-style thread pool: N workers, one inbox back to the loop, one coalesced wake-up.

Workers never touch the loop's queues: a finished job is posted to the loop's
thread-safe inbox and the loop runs its completion in the poll phase (R28).

Name lookups (``getaddrinfo``, ``getnameinfo``) are libuv's "slow I/O": at most
``(size + 1) // 2`` of the threads run them at once, so that a slow DNS server
cannot take every thread from file work. As in libuv, slow jobs wait in a queue
of their own, which takes its turns in the work queue through one token
(``_SLOW_TURN``): a worker that draws the token starts the first slow job and
puts the token back at the end if more are waiting; if the slow jobs already
use their share of threads, the token goes behind the work queued since, or,
with nothing else queued, waits for the next slow job to finish.
"""

from __future__ import annotations

import collections
import contextvars
import os
import queue
import threading
from asyncio import futures
from collections.abc import Callable
from typing import Any, Final

MAX_SIZE: Final = 1024
DEFAULT_SIZE: Final = 4
ENV_VAR: Final = "PHASELOOP_THREADPOOL_SIZE"

# Stands in the work queue for the slow-I/O queue's turn (see the module docstring).
_SLOW_TURN: Final = object()


def resolve_size(option: int | None) -> int:
    """The pool size from the loop option, else the environment, as ``UV_THREADPOOL_SIZE``."""
    if option is None:
        raw = os.environ.get(ENV_VAR)
        if raw is None or not raw.strip():
            return DEFAULT_SIZE
        try:
            option = int(raw)
        except ValueError:
            raise ValueError(f"{ENV_VAR} must be a whole number, got {raw!r}") from None
        if option < 0:
            raise ValueError(f"{ENV_VAR} must not be negative, got {raw!r}")
    return min(max(option, 1), MAX_SIZE)


class Job:
    """One unit of pool work. The loop runs it as a handle once it is done (``_run``)."""

    __slots__ = (
        "_fn",
        "_args",
        "_context",
        "future",
        "_result",
        "_exception",
        "_cancelled",
        "_skipped",
        "_pool",
    )

    def __init__(
        self,
        pool: ThreadPool,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        future: futures.Future[Any],
    ) -> None:
        self._pool = pool
        self._fn = fn
        self._args = args
        self._context = contextvars.copy_context()
        self.future = future
        self._result: Any = None
        self._exception: BaseException | None = None
        self._cancelled = False  # read by the loop's callback runner: a job is a handle
        self._skipped = False

    @property
    def _callback(self) -> Callable[..., Any]:
        # Read by asyncio's slow-callback report in debug mode (base_events._format_handle).
        return self._fn

    def __repr__(self) -> str:
        return f"<thread-pool job {self._fn!r}>"

    def execute(self) -> None:
        """Worker side: run the function unless its awaiter gave up while it was queued."""
        if self.future.cancelled():
            return
        if self._pool.closing:
            self._skipped = True  # taken by a worker as the pool shut down: it never ran
            return
        try:
            self._result = self._context.run(self._fn, *self._args)
        except BaseException as exc:  # handed to the awaiter, whatever it is
            self._exception = exc

    def _run(self) -> None:
        """Loop side, in the poll phase: settle the future."""
        self._pool.pending -= 1
        future = self.future
        if future.done():
            return
        if self._skipped:
            future.cancel()
            return
        exc = self._exception
        if exc is None:
            future.set_result(self._result)
        else:
            exc = futures._convert_future_exc(exc)  # type: ignore[attr-defined]
            if isinstance(exc, StopIteration):  # a Future refuses StopIteration
                new = RuntimeError("the thread-pool job raised StopIteration")
                new.__cause__ = exc
                exc = new
            future.set_exception(exc)
        self._exception = None  # break the traceback ↔ frame cycle


class ThreadPool:
    """The pool of one loop. ``post`` hands a finished job to the loop from any thread."""

    def __init__(self, size: int, post: Callable[[Job], None]) -> None:
        self.size = size
        self.slow_limit = (size + 1) // 2
        """How many slow jobs may run at once (libuv's ``slow_work_thread_threshold``)."""
        self._post = post
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # Jobs, _SLOW_TURN, None (stop)
        self._threads: list[threading.Thread] = []
        # Guarded by _lock: the jobs no worker has taken, and the slow queue's state.
        self._lock = threading.Lock()
        self._queued: set[Job] = set()
        self._slow: collections.deque[Job] = collections.deque()
        self._slow_running = 0
        self._slow_turn_out = False  # the token is in the queue, drawn, or parked
        self._slow_turn_parked = False  # waiting for a slow job to finish
        self.pending = 0  # submitted and not yet completed on the loop: keeps the loop alive
        self.closing = False

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        future: futures.Future[Any],
        *,
        slow: bool = False,
    ) -> Job:
        """Queue ``fn(*args)``; ``slow`` marks a name lookup (libuv's slow I/O)."""
        if self.closing:
            raise RuntimeError("the thread pool is shut down")
        if not self._threads:
            self._start_threads()  # lazily, all at once on first use, as libuv does
        job = Job(self, fn, args, future)
        self.pending += 1
        item: object = job
        with self._lock:
            self._queued.add(job)
            # One thread runs one job at a time whatever its kind: there, slow jobs queue
            # with the rest, which keeps submission order (SEMANTICS §7).
            if slow and self.size > 1:
                self._slow.append(job)
                if self._slow_turn_out:
                    return job  # the token will come round to it
                self._slow_turn_out = True
                item = _SLOW_TURN
        self._queue.put(item)
        return job

    def _start_threads(self) -> None:
        for n in range(self.size):
            thread = threading.Thread(target=self._work, name=f"phaseloop-pool-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        get = self._queue.get
        post = self._post
        lock = self._lock
        queued = self._queued
        while True:
            item = get()
            if item is None:
                return
            if item is _SLOW_TURN:
                with lock:
                    job = self._take_slow_job()
                if job is None:
                    continue
                try:
                    job.execute()
                    post(job)
                finally:  # the slot is given back whatever happens
                    with lock:
                        self._slow_running -= 1
                        if self._slow_turn_parked:
                            self._slow_turn_parked = False
                            self._queue.put(_SLOW_TURN)
                continue
            with lock:
                if item not in queued:  # taken back by shutdown
                    continue
                queued.discard(item)
            item.execute()
            post(item)

    def _take_slow_job(self) -> Job | None:
        """With the token drawn and ``_lock`` held: the slow job to start now, if any."""
        if self._slow_running >= self.slow_limit:
            # Behind the work queued since; with none, until a slow job finishes (_work).
            if self._queue.qsize():
                self._queue.put(_SLOW_TURN)
            else:
                self._slow_turn_parked = True
            return None
        slow = self._slow
        while slow:
            job = slow.popleft()
            if job in self._queued:  # else taken back by shutdown
                self._queued.discard(job)
                self._slow_running += 1
                if slow:
                    self._queue.put(_SLOW_TURN)
                else:
                    self._slow_turn_out = False
                return job
        self._slow_turn_out = False
        return None

    def cancel_queued(self) -> list[Job]:
        """Take back every job no worker has started; the caller cancels their futures."""
        with self._lock:
            jobs = list(self._queued)
            self._queued.clear()
            self._slow.clear()
        self.pending -= len(jobs)
        return jobs

    def stop(self) -> list[threading.Thread]:
        """Stop accepting work and tell every worker to exit after its current job."""
        self.closing = True
        for _ in self._threads:
            self._queue.put(None)
        threads, self._threads = self._threads, []
        return threads
