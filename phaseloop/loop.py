"""The phase-ordered event loop: libuv's ``uv_run`` cycle with Node's queues (SEMANTICS §1–§6).

``EventLoop`` is the stdlib's Unix selector loop (its transports, servers, pipes,
subprocesses, signals and TLS) with the scheduling replaced: ``_run_once`` is
one libuv iteration, and ``call_soon``/``call_at`` feed the phase queues instead
of one ready queue. The stdlib internals this leans on are listed in
docs/semantics.md ("What phaseloop takes from the stdlib loop").
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import heapq
import math
import os
import select
import selectors
import socket
import sys
import threading
import time
import warnings
from asyncio import base_events, events, futures, tasks, unix_events
from asyncio.log import logger
from collections.abc import Callable
from types import BuiltinMethodType, FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .handles import SHARED_EMPTY_CONTEXT, Handle, InternalCall, PhaseHook, Timer, callback_failed
from .queues import (
    C_TASK_STEP,
    DEFERRED_IO_FUNCTIONS,
    FUTURE_TYPES,
    GATHER_DONE_CODE,
    WAKEUP_MODES,
    Router,
    current_task,
)
from .timers import NodeTimers

if TYPE_CHECKING:
    from .threadpool import ThreadPool

PHASES: Final = ("timers", "pending", "idle", "prepare", "poll", "check", "close")
MAX_PENDING_ROUNDS: Final = 8  # libuv re-runs the pending queue at most 8 times after poll
_MAX_SELECT_TIMEOUT: Final = 24 * 3600.0
# Shorter poll timeouts wait in select(), which counts microseconds, rather than in
# epoll_wait, which rounds up to whole milliseconds (up to 1 ms late, 100 % of a 1 ms timer).
_FINE_WAIT: Final = 0.05
# A short wait ends on a timerfd armed to the deadline: a timerfd's expiry has no timer
# slack, select()'s timeout 50 us of it. 3.13's os has timerfd_settime (3.13+, Linux); on
# Linux before 3.13 the loop reaches libc's through ctypes, loaded at its first short wait
# (phaseloop/deadline.py).
_timerfd_settime: Final[Any] = getattr(os, "timerfd_settime", None)  # Any: typeshed's 3.11 os lacks it
_TFD_TIMER_ABSTIME: Final[int] = getattr(os, "TFD_TIMER_ABSTIME", 0)
_LIBC_TIMERFD: Final = _timerfd_settime is None and sys.platform.startswith("linux")
# select()'s own timeout past the timerfd's deadline: a backstop that never decides the wait.
_DEADLINE_BACKSTOP: Final = 0.001
_FD_SETSIZE: Final = 1024  # select() takes no higher descriptor
_MIN_TIMERS_TO_COMPACT: Final = 100
# asyncio timers this many seconds or more ahead wait in per-span buckets, not the heap
# (EventLoop._add_far). A power of two, so that a deadline's bucket is exact.
_FAR_SPAN: Final = 8.0
_PER_FAR_SPAN: Final = 1 / _FAR_SPAN
_FAR_LAST_KEY: Final = 1 << 1100  # the bucket of every deadline past 1e300 (int(inf) raises)
_EVENT_READ: Final = 1
_EVENT_WRITE: Final = 2
_NOT_EPOLLIN: Final = ~select.EPOLLIN if hasattr(select, "epoll") else 0
_NOT_EPOLLOUT: Final = ~select.EPOLLOUT if hasattr(select, "epoll") else 0

_T = TypeVar("_T")
# Handles are built field by field on the fast path: Handle.__init__ costs two Python
# calls (itself and loop.get_debug) and these are the same slots, set to the same values.
_Handle: Final = Handle
_InternalCall: Final = InternalCall
_Timer: Final = Timer
_Context: Final = contextvars.Context
_copy_context: Final = contextvars.copy_context
_monotonic: Final = time.monotonic
_select: Final = select.select
_heappop: Final = heapq.heappop
_NO_ROUTES: Final[dict[Any, Any]] = {}  # call_soon's stand-in for a class the router has not seen
# The stdlib's _make_*_transport refuse an fd that another transport owns since 3.12.
_CHECKS_FD_OWNER: Final = sys.version_info >= (3, 12)

# The stdlib selector loop, typed as Any: phaseloop overrides and reads its
# private members (_run_once, _selector, _transports, ...), which typeshed omits.
_SelectorLoop: Any = unix_events._UnixSelectorEventLoop


# The thread pool (with the stdlib's queue module) and the transports are imported when
# first used (_get_pool, _make_*_transport): together ~110 KiB of Python objects, 30 % of
# what phaseloop's modules take, which a loop that runs only tasks does not need
# (docs/performance.md, "phaseloop's own memory"). The transports' module is cached here:
# an import statement would cost 0.8 µs per transport.
@functools.cache
def _transport_module() -> ModuleType:
    from . import transports

    return transports


# What the stdlib's selector loop sets on itself, on 3.11-3.13 (EventLoop.__slots__).
_STDLIB_LOOP_NAMES: Final = (
    "_asyncgens _asyncgens_shutdown_called _clock_resolution _closed"
    " _coroutine_origin_tracking_enabled _coroutine_origin_tracking_saved_depth _csock"
    " _current_handle _debug _default_executor _exception_handler _executor_shutdown_called"
    " _internal_fds _old_agen_hooks _ready _scheduled _selector _signal_handlers _ssock _stopping"
    " _task_factory _thread_id _timer_cancelled_count _transports _unix_server_sockets"
    " slow_callback_duration"
)


def slots_for(base: type, *names: str, keep: str = "") -> tuple[str, ...]:
    """Slots for a subclass of ``base``: the space-separated ``names``, less those a class
    of ``base``'s defines (a slot would hide its method or default) unless listed in ``keep``."""
    kept = keep.split()
    return tuple(
        name
        for name in " ".join(names).split()
        if name in kept or not any(name in vars(cls) for cls in base.__mro__)
    )


def _check_threadpool_size(option: object) -> int | None:
    """Validate the ``threadpool_size=`` loop option (None means: read the environment)."""
    if option is None:
        return None
    if isinstance(option, bool) or not isinstance(option, int):
        raise TypeError(f"threadpool_size must be an int or None, got {option!r}")
    if option < 0:
        raise ValueError(f"threadpool_size must not be negative, got {option}")
    return option


class EventLoop(_SelectorLoop):  # type: ignore[misc]
    """An asyncio event loop whose every iteration runs Node's (libuv's) phases.

    ``wakeups`` chooses where Future done-callbacks and Task wake-ups go:
    ``"microtask"`` (promise reactions, the default) or ``"immediate"`` (the
    check queue). ``threadpool_size`` sizes the pool behind ``run_in_executor``,
    ``getaddrinfo`` and ``phaseloop.fs``; None reads ``PHASELOOP_THREADPOOL_SIZE``.
    """

    phase: str | None
    """The phase running now: one of ``PHASES``, or None between phases."""

    iteration: int
    """How many iterations this loop has started."""

    _run_poll: Callable[[float | None], None]
    """The poll phase: I/O callbacks of one batch of ready fds (R4), waiting at most
    ``timeout`` s (None: until an fd is ready). Pool completions and threadsafe calls
    arrive through the self-pipe. ``_poll_epoll`` or ``_poll_selector``, bound in __init__."""

    _stopping: bool  # set by the stdlib base: stop() was called

    # Every attribute the loop sets, the stdlib's and its own, is a slot: an attribute the
    # hot paths read is then one indexed load on every Python (LOAD_ATTR_SLOT), and a method
    # call takes the specializing interpreter's fast path. In a dict, the loop's ~70
    # attributes are more than CPython shares keys for (30): 3.11-3.13 then read them by a
    # hashed hint, and 3.12 looks up every method the slow way. A class attribute of the
    # same name (as ``_closed = True`` was) is read the slow way on every Python.
    __slots__ = slots_for(
        _SelectorLoop,
        _STDLIB_LOOP_NAMES,
        "wakeups phase iteration _pool_option _ticks _microtasks _immediates _immediate_unrefs"
        " _check_generation _pending _closing _inbox _wake_pending _timers _timers_at"
        " _timers_cancelled _far _far_keys _far_count _far_cancelled _far_first _far_from"
        " _far_next _node_timers _idle_hooks _prepare_hooks _check_hooks _ref_hooks _active_idle"
        " _pool _route _route_other _method_routes _wake _starting _until_dead _script"
        " _before_exit _fd_to_key _epoll _run_poll _fine_wait _deadline_fd _arm_deadline _deadline_later"
        " _drain _invoke _datagram_view _wake_micro",
    )

    def __init__(
        self,
        selector: Any = None,
        *,
        wakeups: str = "microtask",
        threadpool_size: int | None = None,
        debug: bool | None = None,
    ) -> None:
        self._closed = True  # until the stdlib's __init__ has run (its __del__ reads it)
        self._datagram_view: memoryview | None = None  # see _datagram_buffer
        if wakeups not in WAKEUP_MODES:
            raise ValueError(f"wakeups must be one of {WAKEUP_MODES}, got {wakeups!r}")
        self._pool_option = _check_threadpool_size(threadpool_size)
        self.wakeups = wakeups
        self.phase = None
        self.iteration = 0
        # The queues (SEMANTICS §1-§3). Only _inbox is touched by other threads.
        self._ticks: collections.deque[Any] = collections.deque()
        self._microtasks: collections.deque[Any] = collections.deque()
        self._immediates: collections.deque[Any] = collections.deque()
        self._immediate_unrefs = 0  # unref'd or cleared Immediates waiting for the next check
        self._check_generation = 0
        self._pending: collections.deque[Any] = collections.deque()
        self._closing: collections.deque[Any] = collections.deque()
        self._inbox: collections.deque[Any] = collections.deque()
        self._wake_pending = False
        # asyncio timers: a heap of deadlines (one float per scheduled timer, compared in
        # C) and the timer at each deadline, or a list of them in creation order (ties).
        # Rejected: a heap of (when, seq, timer) tuples, whose ~100 bytes and one more
        # GC-tracked object per timer cost 50 % more garbage collections than the timers
        # themselves, and stock asyncio's heap of TimerHandles (a Python __lt__ per step).
        self._timers: list[float] = []
        self._timers_at: dict[float, Any] = {}
        self._timers_cancelled = 0
        # Far timers: deadlines at or past _far_from, by bucket (int(when / _FAR_SPAN)), each
        # in creation order; the heap of bucket numbers; the earliest deadline among them (or
        # earlier: a cancelled one). Most far timers are timeouts, cancelled before they are
        # due: a list slot each, against a heap entry and a dict entry (~60 bytes).
        self._far: dict[int, list[Any]] = {}
        self._far_keys: list[int] = []
        self._far_count = 0
        self._far_cancelled = 0
        self._far_first = math.inf
        self._far_from = 0.0  # both set by _advance_far before the first timer
        self._far_next = 0.0  # when _advance_far moves the boundary on
        self._advance_far(_monotonic())
        self._node_timers = NodeTimers(self)
        self._idle_hooks: list[PhaseHook] = []
        self._prepare_hooks: list[PhaseHook] = []
        self._check_hooks: list[PhaseHook] = []
        self._ref_hooks = 0
        self._active_idle = 0
        self._pool: ThreadPool | None = None
        router = Router(self, wakeups, self._microtasks, self._immediates, self._closing)
        self._route = router.route
        self._route_other = router.route_other
        self._method_routes = router.method_routes
        self._wake = self._microtasks.append if wakeups == "microtask" else self._immediates.append
        self._wake_micro = wakeups == "microtask"  # call_soon queues bare entries there (_drain_fast)
        # How run_forever behaves this time (see _run_once's prelude).
        self._starting = False
        self._until_dead = False
        self._script: Callable[[], object] | None = None
        self._before_exit: list[events.Handle] = []
        # The fd -> key map of the stdlib's selectors (_key_for), once there is a selector;
        # None for a user's selector built some other way.
        self._fd_to_key: dict[int, selectors.SelectorKey] | None = None
        self._deadline_fd: int | None = None
        self._arm_deadline: Callable[[int, float], object] = _arm_os_timerfd
        self._deadline_later = False  # True: open a timerfd through libc at the first short wait
        super().__init__(selector)
        keys = getattr(self._selector, "_fd_to_key", None)
        self._fd_to_key = keys if type(keys) is dict else None
        # The poll phase reads an EpollSelector's epoll object and map directly (the default
        # on Linux); any other selector (kqueue, poll, a user's) goes through select().
        if type(self._selector) is selectors.EpollSelector:
            epoll_selector: Any = self._selector  # its privates are not in typeshed
            self._epoll = epoll_selector._selector
            self._run_poll = self._poll_epoll
            epfd = self._epoll.fileno()
            self._fine_wait: list[int] | None = [epfd] if epfd < _FD_SETSIZE else None
            if self._fine_wait is not None:
                fd = _os_timerfd()
                if fd is not None:
                    self._use_deadline_timer(fd, _arm_os_timerfd)
                self._deadline_later = _LIBC_TIMERFD
        else:
            self._run_poll = self._poll_selector
        if debug is not None:
            self.set_debug(debug)

    # ------------------------------------------------------------------
    # The iteration
    # ------------------------------------------------------------------

    def _run_once(self) -> None:
        """One libuv iteration (``uv_run``), preceded on entry by the start-up steps."""
        if self._starting:
            self._starting = False
            if not self._start_up():
                return
        self.iteration += 1
        # Empty phases are skipped without a call: this runs once per callback in the worst case.
        if self._pending:
            self._run_pending()
        if self._idle_hooks:
            self._run_hooks("idle", self._idle_hooks)
        if self._prepare_hooks:
            self._run_hooks("prepare", self._prepare_hooks)
        # Poll (R3, R4): the timeout's common case inlined, as this runs once per iteration.
        if (
            self._stopping
            or self._pending
            or self._closing
            or self._active_idle
            or len(self._immediates) > self._immediate_unrefs
        ):
            self._run_poll(0)
        else:
            self._run_poll(self._wait_timeout())
        if self._pending:
            for _ in range(MAX_PENDING_ROUNDS):
                self._run_pending()
                if not self._pending:
                    break
        if self._immediates or self._check_hooks:
            self._run_check()
        if self._closing:
            self._run_closing()
        timers = self._timers
        if self._node_timers._queue:
            self._run_timers(_monotonic())
        elif timers or self._far_count:
            now = _monotonic()  # the phase's frozen now (R7): nothing runs between here and there
            if now >= self._far_next or (timers and timers[0] < now + self._clock_resolution):
                self._run_timers(now)
        if self._stopping and self._closing:
            # Handles closed by the timers that stopped the loop: close them
            # before run_forever returns, as a libuv loop would before exiting (R5).
            self._run_closing()
        if self._until_dead and not self.is_alive():
            self._ran_out_of_work()

    def _start_up(self) -> bool:
        """Before the first iteration: the main script, its drain, and the due timers (R1, R2)."""
        if self._script is not None:
            script, self._script = self._script, None
            script()
        self._drain()
        if self._until_dead and not self.is_alive():
            self._ran_out_of_work()
            if not self._starting:
                return False
            self._starting = False
        if not self._stopping:
            self._run_timers(_monotonic())
        return True

    def _ran_out_of_work(self) -> None:
        # Node's SpinEventLoop: 'beforeExit' may make the loop alive again (R27).
        for handle in list(self._before_exit):
            self._invoke(handle)
        if not self._stopping and self.is_alive():
            self._starting = True  # uv_run again: start-up timers, then iterate
        else:
            self._stopping = True

    # ------------------------------------------------------------------
    # The phases
    # ------------------------------------------------------------------

    def _run_timers(self, now: float) -> None:
        """Due asyncio timers and Node timer lists, all against one frozen ``now`` (R7, R10)."""
        heap = self._timers
        node = self._node_timers
        if now >= self._far_next:
            self._advance_far(now)
        end = now + self._clock_resolution
        if not node._queue and (not heap or heap[0] >= end):
            return  # nothing can be due
        self.phase = "timers"
        # Due timers in reverse, so that pop() hands each to invoke with no reference left
        # here (see _invoke_fast); a list, as this runs on every wake-up for a timer, with
        # cold caches: a deque's first block is half a kilobyte from malloc.
        due: list[Any] = []
        at = self._timers_at
        while heap and heap[0] < end:
            when = _heappop(heap)  # _pop_timer, inlined
            timer = at.pop(when)
            if type(timer) is list:
                ties = timer
                timer = ties.pop(0)
                if ties:
                    at[when] = ties
            timer._scheduled = False
            if timer._cancelled:
                self._timers_cancelled -= 1
            else:
                if timer._context is SHARED_EMPTY_CONTEXT:
                    timer._context = _Context()  # its own, as it runs (handles.Timer)
                due.append(timer)
        timer = None
        due.reverse()
        invoke = self._invoke
        try:
            if not node._queue:
                # Without Node timers now, none can become due this phase (R6: a new one
                # starts from a fresh clock): the asyncio timers run without list lookups.
                while due:
                    invoke(due.pop())
                return
            now_ms = int(now * 1000)
            while True:
                timer_list = node.due_list(now_ms) if node._queue else None
                if due and (timer_list is None or due[-1]._when * 1000 < timer_list.expiry):
                    invoke(due.pop())
                elif timer_list is not None:
                    node.run_list(timer_list, now_ms)
                else:
                    break
        finally:
            for timer in reversed(due):  # only if a callback raised through the loop
                self._push_timer(timer)
            self.phase = None

    def _run_pending(self) -> None:
        """Deferred I/O callbacks (libuv's pending queue), those queued before the phase began."""
        pending = self._pending
        if not pending:
            return
        self.phase = "pending"
        invoke = self._invoke
        for _ in range(len(pending)):
            invoke(pending.popleft())
        self.phase = None

    def _run_hooks(self, phase: str, hooks: list[PhaseHook]) -> None:
        if not hooks:
            return
        self.phase = phase
        invoke = self._invoke
        for hook in list(hooks):
            if hook._active:
                invoke(hook._handle)
        self.phase = None

    def _wait_timeout(self) -> float | None:
        """R3's poll timeout once no queue forces 0 (_run_once tests those): 0 at
        run_while_alive's end, else until the earliest timer, ref'd or not, else block."""
        if self._until_dead and not self.is_alive():
            return 0
        deadline = self._next_deadline()
        if deadline is None:
            return None
        timeout = deadline - _monotonic()
        if timeout <= 0:
            return 0
        return min(timeout, _MAX_SELECT_TIMEOUT)

    def _next_deadline(self) -> float | None:
        heap = self._timers
        at = self._timers_at
        while heap:
            first = at[heap[0]]
            if not (first[0] if type(first) is list else first)._cancelled:
                break
            self._pop_timer()._scheduled = False
            self._timers_cancelled -= 1
        deadline = heap[0] if heap else None
        if self._far_count > self._far_cancelled and (deadline is None or self._far_first < deadline):
            # Moved into the heap as it comes due (_run_timers). The earliest far timer
            # may have been cancelled since: then this wait ends early, with nothing due.
            deadline = self._far_first
        if not self._node_timers._queue:
            return deadline
        expiry = self._node_timers.next_expiry()
        if expiry is not None:
            # libuv's poll timeout: whole milliseconds from the millisecond clock's now to
            # the expiry (libuv reads that clock at the iteration's start, this reads it
            # fresh); the microsecond wait of short timeouts is for asyncio's deadlines.
            now = _monotonic()
            node_deadline = now + max(0, expiry - int(now * 1000)) / 1000 + 1e-6
            if deadline is None or node_deadline < deadline:
                deadline = node_deadline
        return deadline

    def _poll_epoll(self, timeout: float | None) -> None:
        # selectors.EpollSelector.select without its list of (key, events) pairs:
        # the same epoll object and fd -> key map, read directly.
        self.phase = "poll"
        fd_to_key: Any = self._fd_to_key  # an EpollSelector's, set in __init__
        if timeout == 0 and len(fd_to_key) <= 1 and not self._wake_pending and not self._signal_handlers:
            # Only the self-pipe is registered and nothing can be in it: bytes reach it only
            # through _post (which sets _wake_pending first) or a signal handler. A zero-timeout
            # epoll_wait would return nothing; skipping it saves a third of a CPU-bound iteration.
            self.phase = None
            return
        try:
            if timeout is not None and 0 < timeout < _FINE_WAIT and self._fine_wait is not None:
                # The epoll fd is readable while an event is pending: wait on it to the
                # microsecond, then collect (no second call when the wait timed out).
                deadline_fd = self._deadline_fd
                if deadline_fd is None and self._deadline_later:
                    # The time it takes to open comes off this wait, not on top of it.
                    started = _monotonic()
                    deadline_fd = self._open_libc_timerfd()
                    timeout = max(0.0, timeout - (_monotonic() - started))
                if deadline_fd is None:
                    readable = _select(self._fine_wait, (), (), timeout)[0]
                else:
                    # Re-arming also clears the expiry of the last wait that timed out.
                    self._arm_deadline(deadline_fd, _monotonic() + timeout)
                    readable = _select(self._fine_wait, (), (), timeout + _DEADLINE_BACKSTOP)[0]
                # select() lists what is ready in the order asked: the epoll fd first.
                if not readable or readable[0] != self._fine_wait[0]:
                    self.phase = None  # timed out: nothing to collect
                    return
                ready = self._epoll.poll(0, len(fd_to_key) or 1)
            else:
                ready = self._epoll.poll(-1 if timeout is None else timeout, len(fd_to_key) or 1)
        except InterruptedError:
            ready = []
        invoke = self._invoke
        for fd, flags in ready:
            key = fd_to_key.get(fd)
            if key is None:
                continue
            reader, writer = key.data
            # As selectors does: EPOLLHUP and EPOLLERR wake both directions.
            if flags & _NOT_EPOLLOUT and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fileobj)
                else:
                    invoke(reader)
            if flags & _NOT_EPOLLIN and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fileobj)
                else:
                    invoke(writer)
        ready = reader = writer = None  # see _drain_fast
        self.phase = None

    def _open_libc_timerfd(self) -> int | None:
        """Open the short waits' timerfd through libc (Linux before 3.13), once: its number,
        or None where there is none and select()'s timeout keeps timing the waits."""
        self._deadline_later = False
        if self._fine_wait is None:
            return None
        try:
            from .deadline import open_deadline_timer
        except ImportError:  # a Python built without ctypes
            return None
        opened = open_deadline_timer()
        return None if opened is None else self._use_deadline_timer(*opened)

    def _use_deadline_timer(self, fd: int, arm: Callable[[int, float], object]) -> int | None:
        """End the short waits on timerfd ``fd``, armed by ``arm``: its number, or None (and
        ``fd`` closed) where it is past select()'s reach."""
        if fd >= _FD_SETSIZE or self._fine_wait is None:
            os.close(fd)
            return None
        self._deadline_fd = fd
        self._arm_deadline = arm
        self._fine_wait.append(fd)
        return fd

    def _poll_selector(self, timeout: float | None) -> None:
        # _poll_epoll's dispatch, for any other selector. Both keep it inline rather than
        # share a method (one Python call more per ready fd, on the I/O hot path).
        self.phase = "poll"
        invoke = self._invoke
        for key, mask in self._selector.select(timeout):
            reader, writer = key.data
            if mask & _EVENT_READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fileobj)
                else:
                    invoke(reader)
            if mask & _EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fileobj)
                else:
                    invoke(writer)
        reader = writer = None  # see _drain_fast
        self.phase = None

    def _run_check(self) -> None:
        """Check hooks, then the immediates queued before this phase began (R16)."""
        if self._check_hooks:
            self._run_hooks("check", self._check_hooks)
        immediates = self._immediates
        if not immediates:
            return
        self.phase = "check"
        self._check_generation += 1
        self._immediate_unrefs = 0
        if self._debug:
            invoke = self._invoke
            for _ in range(len(immediates)):
                invoke(immediates.popleft())
        else:
            # _invoke_fast, inlined: the hottest loop of asyncio code on phaseloop.
            popleft = immediates.popleft
            ticks = self._ticks
            microtasks = self._microtasks
            shared = SHARED_EMPTY_CONTEXT
            for _ in range(len(immediates)):
                handle = popleft()
                if handle._cancelled:
                    continue
                args = handle._args
                context = handle._context
                if context is shared:
                    context = handle._context = _Context()  # its own, as it runs (call_soon)
                try:
                    if not args:
                        context.run(handle._callback)
                    elif len(args) == 1:
                        context.run(handle._callback, args[0])
                    else:
                        context.run(handle._callback, *args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    callback_failed(handle, exc)
                handle = args = context = None  # before the drain: see _invoke_fast
                if ticks or microtasks:
                    self._drain()
        handle = args = context = None
        self.phase = None

    def _run_closing(self) -> None:
        """Close callbacks, most recently closed first (R25)."""
        if not self._closing:
            return
        self.phase = "close"
        # Handles closed from here on wait for the next close phase (the deque
        # stays the same object: the router holds its appendleft).
        closing = collections.deque(self._closing)
        self._closing.clear()
        invoke = self._invoke
        try:
            while closing:
                invoke(closing.popleft())
        finally:
            self._closing.extend(closing)  # left over only if a callback raised through the loop
            self.phase = None

    # ------------------------------------------------------------------
    # Running callbacks: the only places callbacks are called
    # ------------------------------------------------------------------

    def _invoke_fast(self, handle: Any) -> None:
        # Callers pass the handle straight from its queue and keep no reference, so that
        # dropping it here frees a finished task before its wake-ups run (see _drain_fast).
        if handle._cancelled:
            return
        # Handle._run, inlined here, in _drain_fast and in _run_check, and without its
        # ``run(callback, *args)``: CPython spends ~200 ns building that call's argument
        # tuple, five times what the callback's own call costs. Debug mode keeps Handle._run.
        args = handle._args
        context = handle._context
        if context is SHARED_EMPTY_CONTEXT:
            context = handle._context = _Context()  # its own, as it runs (call_soon)
        try:
            if not args:
                context.run(handle._callback)
            elif len(args) == 1:
                context.run(handle._callback, args[0])
            else:
                context.run(handle._callback, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            callback_failed(handle, exc)
        handle = args = context = None
        if self._ticks or self._microtasks:
            self._drain()

    def _drain_fast(self) -> None:
        """R19: every tick (new ones too), then every microtask (new ones too); again until both are empty."""
        ticks = self._ticks
        microtasks = self._microtasks
        queue = ticks
        shared = SHARED_EMPTY_CONTEXT
        handle_type = _Handle
        task_step = C_TASK_STEP
        function = FunctionType
        while True:
            if not queue:
                queue = microtasks if queue is ticks else ticks
                if not queue:
                    # A failed coroutine's frame keeps its callers' frames (f_back), and with
                    # them these locals: drop them, or the task lives on in a cycle until the GC.
                    handle = args = context = None
                    return
            handle = queue.popleft()
            kind = type(handle)
            if kind is not handle_type:  # one test for the commonest entry, call_soon's Handle
                # The bare entries call_soon queues for asyncio's own callbacks, in the
                # microtask queue only: a task's step and context, or gather's done callback,
                # its future and context (call_soon says why).
                if kind is task_step:
                    context = queue.popleft()
                    try:
                        context.run(handle)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        callback_failed(events.Handle(handle, (), self, context), exc)
                    continue
                if kind is function:
                    args = queue.popleft()
                    context = queue.popleft()
                    try:
                        context.run(handle, args)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        callback_failed(events.Handle(handle, (args,), self, context), exc)
                    continue
            if handle._cancelled:
                continue
            args = handle._args  # as in _invoke_fast
            context = handle._context
            if context is shared:
                context = handle._context = _Context()  # its own, as it runs (call_soon)
            try:
                if not args:
                    context.run(handle._callback)
                elif len(args) == 1:
                    context.run(handle._callback, args[0])
                else:
                    context.run(handle._callback, *args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                callback_failed(handle, exc)

    def _run_timed(self, handle: Any) -> None:
        # Debug mode: report slow callbacks, as the stock loop does.
        self._current_handle = handle
        try:
            t0 = self.time()
            handle._run()
            dt = self.time() - t0
            if dt >= self.slow_callback_duration:
                logger.warning(
                    "Executing %s took %.3f seconds",
                    base_events._format_handle(handle),  # type: ignore[attr-defined]
                    dt,
                )
        finally:
            self._current_handle = None
            handle = None  # see _drain_fast

    def _invoke_debug(self, handle: Any) -> None:
        if handle._cancelled:
            return
        self._run_timed(handle)
        handle = None
        if self._ticks or self._microtasks:
            self._drain()

    def _drain_debug(self) -> None:
        ticks = self._ticks
        microtasks = self._microtasks
        while True:
            while ticks:
                handle = ticks.popleft()
                if not handle._cancelled:
                    self._run_timed(handle)
            while microtasks:
                handle = self._pop_microtask(microtasks)
                if not handle._cancelled:
                    self._run_timed(handle)
            if not ticks:
                handle = None  # see _drain_fast
                return

    def _pop_microtask(self, microtasks: collections.deque[Any]) -> Any:
        """The next microtask as a handle: a bare entry (see _drain_fast) becomes an
        ``asyncio.Handle``, for debug mode's timing and reports."""
        first = microtasks.popleft()
        kind = type(first)
        if kind is C_TASK_STEP:
            return events.Handle(first, (), self, microtasks.popleft())
        if kind is FunctionType:
            future = microtasks.popleft()
            return events.Handle(first, (future,), self, microtasks.popleft())
        return first

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        if enabled:
            self._invoke = self._invoke_debug
            self._drain = self._drain_debug
        else:
            self._invoke = self._invoke_fast
            self._drain = self._drain_fast

    # ------------------------------------------------------------------
    # Scheduling: asyncio's entry points, routed to the phase queues (§3)
    # ------------------------------------------------------------------

    def create_task(self, coro: Any, *, name: str | None = None, context: Any = None) -> asyncio.Task[Any]:
        """``BaseEventLoop.create_task``: a Task, or what the task factory makes."""
        if self._task_factory is not None or self._closed:
            return super().create_task(coro, name=name, context=context)  # type: ignore[no-any-return]
        # The stdlib's own path, without its _check_closed call and, out of debug mode,
        # its traceback check: 50-150 ns of a task's 2-3 us, on every create_task and gather.
        task = tasks.Task(coro, loop=self, name=name, context=context)
        if self._debug:
            del task._source_traceback[-1]  # type: ignore[attr-defined]  # this method
        return task

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> events.Handle:
        """Queue ``callback(*args)``: an immediate, unless its type says microtask or close."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle: Any = events.Handle(callback, args, self, context)
            if handle._source_traceback:
                del handle._source_traceback[-1]
            self._route(callback, args)(handle)
            return handle  # type: ignore[no-any-return]
        # Router.route, with its commonest cases inlined: a task step, a Future callback, a function.
        # A C task's step and gather's done callback are passed only by asyncio, which drops
        # what call_soon returns. As microtasks they queue bare, with no entry object: the
        # step and its context, or the callback, its future and its context (_drain_fast
        # tells them by type), and call_soon returns None (docs/semantics.md). Elsewhere
        # they queue as InternalCalls, 64 bytes to a Handle's 96-104 (handles.py). Each case
        # builds its own entry, as a shared tail costs every call.
        kind = type(callback)
        if kind is C_TASK_STEP:
            if context is None:
                context = _copy_context()
            if self._wake_micro and current_task(self) is not callback.__self__:  # type: ignore[attr-defined]
                microtasks = self._microtasks
                microtasks.append(callback)
                microtasks.append(context)
                return None  # type: ignore[return-value]
            # A bare ``yield`` (the task's own step), or any wake-up in "immediate" mode.
            call: Any = _InternalCall()
            call._callback = callback
            call._args = args
            call._context = context
            call._cancelled = False
            self._immediates.append(call)
            return call  # type: ignore[no-any-return]
        if len(args) == 1 and isinstance(args[0], FUTURE_TYPES):
            # cb(future): a Future's done callback or a task's wake-up. A C task's wake-up (a
            # builtin method) takes two tests here, as callable() took before.
            if kind is FunctionType:
                if callback.__code__ is GATHER_DONE_CODE:
                    if context is None:
                        context = _copy_context()
                    if self._wake_micro:
                        microtasks = self._microtasks
                        microtasks.append(callback)
                        microtasks.append(args[0])
                        microtasks.append(context)
                        return None  # type: ignore[return-value]
                    call = _InternalCall()
                    call._callback = callback
                    call._args = args
                    call._context = context
                    call._cancelled = False
                    self._immediates.append(call)
                    return call  # type: ignore[no-any-return]
            elif kind is not BuiltinMethodType and not callable(callback):
                raise TypeError(f"a callable object was expected by call_soon(), got {callback!r}")
            handle = _Handle()
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._loop = self
            handle._source_traceback = None
            handle._repr = None
            handle._context = _copy_context() if context is None else context
            self._wake(handle)
            return handle  # type: ignore[no-any-return]
        handle = _Handle()
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._loop = self
        handle._source_traceback = None
        handle._repr = None
        if context is None:
            # Made where no context variable is set, the handle shares one empty context
            # until it runs or get_context() asks, as a timer does (handles.Handle).
            context = _copy_context()
            if not context:
                context = SHARED_EMPTY_CONTEXT
        handle._context = context
        if kind is FunctionType:
            if callback in DEFERRED_IO_FUNCTIONS:
                self._microtasks.append(handle)
            else:
                self._immediates.append(handle)
        elif kind is BuiltinMethodType:  # e.g. fut.set_result: setImmediate, as Router.route_other says
            self._immediates.append(handle)
        elif kind is MethodType:  # the router's cache, read here; a miss goes to Router.route_other
            method: Any = callback
            route = self._method_routes.get(type(method.__self__), _NO_ROUTES).get(method.__func__)
            (route or self._route_other(callback))(handle)
        elif callable(callback):
            self._route_other(callback)(handle)
        else:
            raise TypeError(f"a callable object was expected by call_soon(), got {callback!r}")
        return handle  # type: ignore[no-any-return]

    def _call_soon(
        self, callback: Callable[..., object], args: tuple[Any, ...], context: Any
    ) -> events.Handle:
        handle = events.Handle(callback, args, self, context)
        self._route(callback, args)(handle)
        return handle

    def call_soon_threadsafe(
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> events.Handle:
        """Like ``uv_async_send``: the callback runs in the poll phase, from any thread."""
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        elif not callable(callback):
            raise TypeError(f"a callable object was expected by call_soon_threadsafe(), got {callback!r}")
        handle: Any = events.Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._post(handle)
        return handle  # type: ignore[no-any-return]

    def _post(self, handle: Any) -> None:
        """Hand a handle to the loop from any thread; one wake-up covers a burst."""
        self._inbox.append(handle)
        if not self._wake_pending:
            self._wake_pending = True
            self._write_to_self()

    def _add_callback(self, handle: events.Handle) -> None:
        # The stdlib calls this for signal handlers: they are poll-phase I/O.
        if not handle._cancelled:
            self._inbox.append(handle)

    def _read_from_self(self) -> None:
        super()._read_from_self()
        # Only after the pipe is drained: clearing first could swallow the byte of a
        # post made in between, and a later post would then see the flag set and not write.
        # Posts append before they test the flag, so the batch below includes them.
        self._wake_pending = False
        inbox = self._inbox
        # Not _invoke: the inbox also holds the pool's Jobs, whose _run settles a future.
        invoke = self._invoke_debug if self._debug else self._invoke_own_run
        for _ in range(len(inbox)):
            invoke(inbox.popleft())

    def _invoke_own_run(self, handle: Any) -> None:
        # _invoke_fast for handle-like objects with a _run of their own (a Job).
        if handle._cancelled:
            return
        handle._run()
        handle = None
        if self._ticks or self._microtasks:
            self._drain()

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> events.TimerHandle:
        """A timer ``delay`` seconds from now; equal deadlines run in the order they were created."""
        if delay is None:
            raise TypeError("delay must not be None")
        when = _monotonic() + delay
        if type(when) is not float or when != when:  # not a plain float, or NaN
            _check_when(when)
        return self._add_timer(when, callback, args, context)

    def call_at(
        self, when: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> events.TimerHandle:
        """A timer at loop time ``when``; equal deadlines run in the order they were created."""
        if type(when) is not float or when != when:
            _check_when(when)
        return self._add_timer(when, callback, args, context)

    def _add_timer(
        self, when: float, callback: Callable[..., object], args: tuple[Any, ...], context: Any
    ) -> events.TimerHandle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer: Any
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
            timer = events.TimerHandle(when, callback, args, self, context)
            del timer._source_traceback[-2:]  # this method and call_at/call_later
        elif callable(callback):
            timer = _Timer()
            timer._callback = callback
            timer._args = args
            timer._cancelled = False
            timer._loop = self
            timer._source_traceback = None
            timer._repr = None
            if context is None:
                context = _copy_context()
                if not context:  # no variable set: share one until the timer fires (handles.Timer)
                    context = SHARED_EMPTY_CONTEXT
            timer._context = context
            timer._when = when
        else:
            raise TypeError(f"a callable object was expected by call_at(), got {callback!r}")
        if when >= self._far_from:
            self._add_far(timer, when)
        else:
            self._push_timer(timer)
        return timer  # type: ignore[no-any-return]

    def _add_far(self, timer: Any, when: float) -> None:
        """Put a timer in its bucket of far timers, unless the boundary, stale, has passed it.

        Ties keep their creation order: a deadline's timers are all in the heap or all in
        one bucket, as the buckets up to the boundary move into the heap (_advance_far)
        before any later timer of theirs is made.
        """
        now = _monotonic()
        if now >= self._far_next:  # no timers phase for a while (a long poll, a loop not running)
            self._advance_far(now)
            if when < self._far_from:
                self._push_timer(timer)
                return
        key = int(when * _PER_FAR_SPAN) if when < 1e300 else _FAR_LAST_KEY
        bucket = self._far.get(key)
        if bucket is None:
            self._far[key] = [timer]
            heapq.heappush(self._far_keys, key)
        else:
            bucket.append(timer)
        self._far_count += 1
        if when < self._far_first:
            self._far_first = when
        timer._scheduled = True

    def _advance_far(self, now: float) -> None:
        """Move the far boundary to the next span but one, and its buckets into the heap."""
        span = int(now * _PER_FAR_SPAN)
        self._far_next = (span + 1) * _FAR_SPAN
        self._far_from = (span + 2) * _FAR_SPAN
        keys = self._far_keys
        if not keys or keys[0] > span + 1:
            return
        while keys and keys[0] <= span + 1:
            for timer in self._far.pop(heapq.heappop(keys)):
                self._far_count -= 1
                if timer._cancelled:
                    self._far_cancelled -= 1
                    timer._scheduled = False
                else:
                    self._push_timer(timer)
        self._far_first = self._earliest_far()

    def _purge_far(self, cancelling: Any) -> None:
        """Drop the cancelled far timers (more than half of them)."""
        far = self._far
        for key in list(far):
            live = []
            for timer in far[key]:
                if timer._cancelled or timer is cancelling:
                    timer._scheduled = False
                else:
                    live.append(timer)
            if live:
                far[key] = live
            else:
                del far[key]
        self._far_keys = sorted(far)  # a sorted list is a heap
        self._far_count = sum(map(len, far.values()))
        self._far_cancelled = 0
        self._far_first = self._earliest_far()

    def _earliest_far(self) -> float:
        """The earliest deadline in the first far bucket (a cancelled timer's counts too)."""
        keys = self._far_keys
        return min(timer._when for timer in self._far[keys[0]]) if keys else math.inf

    def _push_timer(self, timer: Any) -> None:
        when = timer._when
        other = self._timers_at.setdefault(when, timer)
        if other is not timer:
            if type(other) is list:
                other.append(timer)
            else:
                self._timers_at[when] = [other, timer]
        heapq.heappush(self._timers, when)
        timer._scheduled = True

    def _pop_timer(self) -> Any:
        """Take the earliest timer off the heap; of equal deadlines, the first created."""
        when = heapq.heappop(self._timers)
        timer = self._timers_at.pop(when)
        if type(timer) is list:
            ties = timer
            timer = ties.pop(0)
            if ties:
                self._timers_at[when] = ties
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:
        # TimerHandle.cancel() calls this before it sets handle._cancelled: the
        # compactions are told which timer is going.
        if not handle._scheduled:
            return
        if handle._when >= self._far_from:  # in a bucket: a far timer stays far until moved
            self._far_cancelled += 1
            if self._far_count > _MIN_TIMERS_TO_COMPACT and self._far_cancelled * 2 > self._far_count:
                self._purge_far(handle)
        else:
            self._timers_cancelled += 1
            heap = self._timers
            if len(heap) > _MIN_TIMERS_TO_COMPACT and self._timers_cancelled * 2 > len(heap):
                self._compact_timers(handle)

    def _compact_timers(self, cancelling: Any) -> None:
        """Rebuild the heap without its cancelled timers (more than half of them)."""
        timers = [
            timer
            for entry in self._timers_at.values()
            for timer in (entry if type(entry) is list else (entry,))
        ]
        self._timers.clear()
        self._timers_at.clear()
        self._timers_cancelled = 0
        for timer in timers:  # ties keep their creation order
            if timer._cancelled or timer is cancelling:
                timer._scheduled = False
            else:
                self._push_timer(timer)

    # ------------------------------------------------------------------
    # Node's queues and handles (used by phaseloop.node)
    # ------------------------------------------------------------------

    def add_idle_hook(self, callback: Callable[..., object], *args: Any) -> PhaseHook:
        """Run ``callback(*args)`` once per iteration in the idle phase; forces a 0 poll timeout."""
        return self._add_hook("idle", self._idle_hooks, callback, args)

    def add_prepare_hook(self, callback: Callable[..., object], *args: Any) -> PhaseHook:
        """Run ``callback(*args)`` once per iteration in the prepare phase, just before poll."""
        return self._add_hook("prepare", self._prepare_hooks, callback, args)

    def add_check_hook(self, callback: Callable[..., object], *args: Any) -> PhaseHook:
        """Run ``callback(*args)`` once per iteration in the check phase, before the immediates."""
        return self._add_hook("check", self._check_hooks, callback, args)

    def _add_hook(
        self, phase: str, hooks: list[PhaseHook], callback: Callable[..., object], args: tuple[Any, ...]
    ) -> PhaseHook:
        self._check_closed()
        if not callable(callback):
            raise TypeError(f"a callable object was expected by add_{phase}_hook(), got {callback!r}")
        return PhaseHook(self, phase, hooks, callback, args)

    def _add_before_exit(self, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self._before_exit.append(events.Handle(callback, args, self))

    # ------------------------------------------------------------------
    # Liveness and running (§5)
    # ------------------------------------------------------------------

    def is_alive(self) -> bool:
        """True while anything ref'd could still run a callback (R5)."""
        if (
            len(self._immediates) > self._immediate_unrefs
            or self._node_timers.refcount
            or len(self._timers) > self._timers_cancelled
            or self._far_count > self._far_cancelled
            or self._pending
            or self._closing
            or self._ticks
            or self._microtasks
            or self._inbox
            or self._ref_hooks
            or (self._pool is not None and self._pool.pending)
        ):
            return True
        if self._selector is None:
            return False
        if len(self._selector.get_map()) > self._internal_fds:
            return True
        return any(not transport.is_closing() for transport in self._transports.values())

    def run_forever(self) -> None:
        """Run iterations until ``stop()``, with asyncio's meaning (an idle loop waits)."""
        self._starting = True
        super().run_forever()

    def run_while_alive(self) -> None:
        """Run iterations until nothing ref'd is left (or ``stop()``), as ``uv_run`` does."""
        self._until_dead = True
        try:
            self.run_forever()
        finally:
            self._until_dead = False

    def _run_script(self, script: Callable[[], object]) -> None:
        """Run ``script`` as Node's main script, then the loop while alive (used by node.run)."""
        self._script = script
        try:
            self.run_while_alive()
        finally:
            self._script = None

    # ------------------------------------------------------------------
    # The thread pool (§7)
    # ------------------------------------------------------------------

    def _get_pool(self) -> ThreadPool:
        pool = self._pool
        if pool is None:
            from .threadpool import ThreadPool, resolve_size

            pool = self._pool = ThreadPool(resolve_size(self._pool_option), self._post)
        return pool

    @property
    def threadpool_size(self) -> int:
        """How many threads the loop's pool has (or will have, when first used)."""
        if self._pool is not None:
            return self._pool.size
        from .threadpool import resolve_size

        return resolve_size(self._pool_option)

    def queue_work(self, func: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Run ``func(*args)`` on the loop's thread pool (libuv's ``uv_queue_work``), always.

        Unlike ``run_in_executor(None, ...)`` this ignores ``set_default_executor``.
        The future completes in the poll phase; cancelling it before a worker
        starts the job means the job never runs.
        """
        self._check_closed()
        if not callable(func):
            raise TypeError(f"a callable object was expected by queue_work(), got {func!r}")
        future: asyncio.Future[_T] = self.create_future()
        self._get_pool().submit(func, args, future)
        return future

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        """``socket.getaddrinfo`` on the pool, as libuv's slow I/O (R28): see ``_look_up``."""
        lookup = self._getaddrinfo_debug if self._debug else socket.getaddrinfo
        return await self._look_up(lookup, host, port, family, type, proto, flags)  # type: ignore[no-any-return]

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """``socket.getnameinfo`` on the pool, as libuv's slow I/O (R28): see ``_look_up``."""
        return await self._look_up(socket.getnameinfo, sockaddr, flags)  # type: ignore[no-any-return]

    def _look_up(self, lookup: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """``run_in_executor(None, lookup, *args)``, where at most half the pool's threads
        (rounded up) look up names at once, as libuv runs ``dns.lookup``: a slow DNS server
        then leaves file work threads to run on. A default executor set by the user takes
        the lookups as the stock loop gives them to it."""
        if self._default_executor is not None:
            return self.run_in_executor(None, lookup, *args)
        self._check_closed()
        self._check_default_executor()
        future: asyncio.Future[Any] = self.create_future()
        self._get_pool().submit(lookup, args, future, slow=True)
        return future

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``func(*args)`` in ``executor``, or in the loop's thread pool when None."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        elif not callable(func):
            raise TypeError(f"a callable object was expected by run_in_executor(), got {func!r}")
        if executor is None:
            executor = self._default_executor
            if executor is None:
                self._check_default_executor()
                return self.queue_work(func, *args)
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Stop the pool: queued jobs are cancelled, running ones finish, threads are joined."""
        pool = self._pool
        if pool is None or self._default_executor is not None:
            await super().shutdown_default_executor(*(() if timeout is None else (timeout,)))
            return
        self._executor_shutdown_called = True
        for job in pool.cancel_queued():
            job.future.cancel()
        threads = pool.stop()
        joined: asyncio.Future[None] = self.create_future()

        def join_all() -> None:
            for thread in threads:
                thread.join()
            if not self.is_closed():
                self.call_soon_threadsafe(futures._set_result_unless_cancelled, joined, None)  # type: ignore[attr-defined]

        threading.Thread(target=join_all, name="phaseloop-pool-join", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(joined), timeout)
        except TimeoutError:
            warnings.warn(
                f"The thread pool did not finish joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------
    # Readers and writers: the stdlib's, without its KeyError for an fd not registered
    # ------------------------------------------------------------------

    def _key_for(self, fd: Any) -> selectors.SelectorKey | None:
        """The selector's key for ``fd``, or None when ``fd`` is not registered.

        The stdlib's ``_add_reader`` and ``_remove_writer`` ask ``get_key``, which on 3.11
        and 3.12 formats and raises a KeyError for an fd that is not registered: 2.7 µs,
        twice in every connection's life (its first reader and its last writer). 3.13's
        loop asks ``get_map().get()`` instead; this is that, without the mapping's calls.
        Like ``get_key``, an invalid fd raises ValueError.
        """
        keys = self._fd_to_key
        if keys is not None and type(fd) is int and fd >= 0:
            return keys.get(fd)
        key: selectors.SelectorKey | None = self._selector.get_map().get(fd)
        return key

    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> events.Handle:
        return self._add_handle(fd, _EVENT_READ, callback, args)

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> events.Handle:
        return self._add_handle(fd, _EVENT_WRITE, callback, args)

    def _remove_reader(self, fd: Any) -> bool:
        return self._remove_handle(fd, _EVENT_READ)

    def _remove_writer(self, fd: Any) -> bool:
        return self._remove_handle(fd, _EVENT_WRITE)

    def _add_handle(
        self, fd: Any, event: int, callback: Callable[..., object], args: tuple[Any, ...]
    ) -> events.Handle:
        """Watch ``fd`` for ``event`` with a new handle, which replaces (cancels) the old one."""
        self._check_closed()
        handle = events.Handle(callback, args, self, None)
        key = self._key_for(fd)
        reader, writer = (None, None) if key is None else key.data
        data: tuple[Any, Any]
        if event == _EVENT_READ:
            replaced, data = reader, (handle, writer)
        else:
            replaced, data = writer, (reader, handle)
        if key is None:
            self._selector.register(fd, event, data)
        else:
            self._selector.modify(fd, key.events | event, data)
        if replaced is not None:
            replaced.cancel()
        return handle

    def _remove_handle(self, fd: Any, event: int) -> bool:
        """Stop watching ``fd`` for ``event``: whether a handle was removed (and cancelled)."""
        if self.is_closed():
            return False
        key = self._key_for(fd)
        if key is None:
            return False
        reader, writer = key.data
        if event == _EVENT_READ:
            removed, data = reader, (None, writer)
        else:
            removed, data = writer, (reader, None)
        mask = key.events & ~event
        if mask:
            self._selector.modify(fd, mask, data)
        else:
            self._selector.unregister(fd)
        if removed is None:
            return False
        removed.cancel()
        return True

    # ------------------------------------------------------------------
    # Transports: the stdlib's, with phaseloop's read paths (transports.py)
    # ------------------------------------------------------------------

    def _make_socket_transport(
        self, sock: Any, protocol: Any, waiter: Any = None, *, extra: Any = None, server: Any = None
    ) -> Any:
        if _CHECKS_FD_OWNER:
            self._ensure_fd_no_transport(sock)
        return _transport_module().SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_datagram_transport(
        self, sock: Any, protocol: Any, address: Any = None, waiter: Any = None, extra: Any = None
    ) -> Any:
        if _CHECKS_FD_OWNER:
            self._ensure_fd_no_transport(sock)
        return _transport_module().DatagramTransport(self, sock, protocol, address, waiter, extra)

    def _make_read_pipe_transport(
        self, pipe: Any, protocol: Any, waiter: Any = None, extra: Any = None
    ) -> Any:
        return _transport_module().ReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _datagram_buffer(self, size: int) -> memoryview:
        """``size`` bytes to receive datagrams into, one buffer shared by this loop's transports."""
        view = self._datagram_view
        if view is None or len(view) < size:
            view = self._datagram_view = memoryview(bytearray(size))
        return view[:size]

    # ------------------------------------------------------------------
    # Accepting connections
    # ------------------------------------------------------------------

    def _accept_connection(
        self,
        protocol_factory: Callable[[], Any],
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *timeouts: Any,
    ) -> None:
        """Accept what the listening socket has, up to ``backlog``, and serve each one at once.

        The stdlib starts a task per connection (``_accept_connection2``) that builds the
        protocol and transport and waits for the transport's ``waiter``; a plain socket
        outside debug mode needs neither the task nor the waiter, so they are skipped, as
        Node emits 'connection' from the accept callback itself. Each connection's factory
        still runs in a context of its own, as in that task. TLS, debug mode and accept()
        errors (the stdlib pauses accepting on EMFILE and the like) take the stdlib's path.
        """
        if sslcontext is not None or self._debug:
            super()._accept_connection(protocol_factory, sock, sslcontext, server, backlog, *timeouts)
            return
        # socket.accept() converts the listening socket's family and type to enums for each
        # connection (1.1 µs); a plain socket's are looked up once per batch here instead.
        accept: Callable[[], tuple[int, Any]] | None = None
        if type(sock) is socket.socket:
            listener: Any = sock  # socket._accept is not in typeshed
            accept, family, kind, proto = listener._accept, sock.family, sock.type, sock.proto
        for _ in range(backlog):
            try:
                if accept is None:
                    conn, addr = sock.accept()
                else:
                    fd, addr = accept()
                    conn = socket.socket(family, kind, proto, fd)
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:
                # Retried by the stdlib's loop, which reports and handles the error.
                super()._accept_connection(protocol_factory, sock, sslcontext, server, backlog, *timeouts)
                return
            _copy_context().run(self._serve_connection, protocol_factory, conn, addr, server)

    def _serve_connection(
        self, protocol_factory: Callable[[], Any], conn: Any, addr: Any, server: Any
    ) -> None:
        try:
            self._make_socket_transport(conn, protocol_factory(), extra={"peername": addr}, server=server)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            # Dropped unreported outside debug mode, as _accept_connection2 does; the
            # socket is closed here rather than left to the garbage collector.
            conn.close()

    # ------------------------------------------------------------------
    # Deferred I/O errors and closing
    # ------------------------------------------------------------------

    def _sock_connect(self, fut: asyncio.Future[None], sock: Any, address: Any) -> None:
        # libuv reports a connect() that fails at once (e.g. ECONNREFUSED on
        # loopback) from the pending phase, never synchronously (uv__io_feed).
        probe: asyncio.Future[None] = self.create_future()
        super()._sock_connect(probe, sock, address)
        if probe.done():
            exc = probe.exception()
            if exc is None:
                fut.set_result(None)
            else:
                self._pending.append(events.Handle(_fail_unless_done, (fut, exc), self))
            return
        probe.add_done_callback(lambda done: _copy_outcome(done, fut))
        fut.add_done_callback(lambda outer: probe.cancel() if outer.cancelled() else None)

    def close(self) -> None:
        """Close the loop: cancel queued pool jobs, stop the pool, release every fd."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        pool = self._pool
        if pool is not None:
            for job in pool.cancel_queued():
                job.future.cancel()
            for thread in pool.stop():
                if thread is not threading.current_thread():
                    thread.join(0.01)  # idle workers exit at once; a busy one is not waited for
        super().close()
        self._deadline_later = False
        if self._deadline_fd is not None:
            os.close(self._deadline_fd)
            self._deadline_fd = None
            self._fine_wait = None
        for queue in (
            self._ticks,
            self._microtasks,
            self._immediates,
            self._pending,
            self._closing,
            self._inbox,
        ):
            queue.clear()
        self._timers.clear()
        self._timers_at.clear()
        self._far.clear()
        self._far_keys.clear()
        self._far_count = self._far_cancelled = 0
        self._far_first = math.inf
        self._node_timers.clear()
        self._before_exit.clear()


def _arm_os_timerfd(fd: int, when: float) -> None:
    """Arm a timerfd to the monotonic clock's ``when``, through 3.13's os."""
    _timerfd_settime(fd, flags=_TFD_TIMER_ABSTIME, initial=when)


def _os_timerfd() -> int | None:
    """A timerfd on the monotonic clock through 3.13's os, or None where os has none
    (before 3.13, not Linux) or cannot make one."""
    if _timerfd_settime is None:
        return None
    try:
        os_313: Any = os  # typeshed's os for 3.11 has no timerfd
        fd: int = os_313.timerfd_create(time.CLOCK_MONOTONIC, flags=os_313.TFD_CLOEXEC)
    except OSError:
        return None
    return fd


def _check_when(when: object) -> None:
    if when is None:
        raise TypeError("when cannot be None")
    if not isinstance(when, (int, float)):
        raise TypeError(f"when must be a number, got {type(when).__name__}")
    if math.isnan(when):
        raise ValueError("when must not be NaN")


def _fail_unless_done(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _copy_outcome(source: asyncio.Future[Any], dest: asyncio.Future[Any]) -> None:
    if dest.done():
        if not source.cancelled():
            source.exception()  # mark it retrieved
        return
    if source.cancelled():
        dest.cancel()
        return
    exc = source.exception()
    if exc is None:
        dest.set_result(source.result())
    else:
        dest.set_exception(exc)
