"""Node's JavaScript timers: one FIFO list per duration, lists in a priority queue.

R10: due timers run list by list (a list is drained of all its due timers before
the next list is looked at), lists ordered by ``(expiry, id)``. R7: a timers
phase compares against one frozen ``now``. R14: intervals re-arm from the time
their callback started. Times are whole milliseconds of ``time.monotonic()``,
read fresh whenever a timer is inserted (R6).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
import warnings
from asyncio import events
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .handles import init_handle, run_handle

if TYPE_CHECKING:
    from .loop import EventLoop

TIMEOUT_MAX: Final = 2**31 - 1
# Stale entries the list queue may hold beyond one per list before it is rebuilt.
_STALE_SLACK: Final = 32


class TimeoutOverflowWarning(RuntimeWarning):
    """A delay above 2**31-1 ms was given; it was set to 1 ms, as Node does."""


def now_ms() -> int:
    """The fresh loop clock in whole milliseconds (libuv's ``uv_now`` after an update)."""
    return int(time.monotonic() * 1000)


def coerce_delay(delay: object) -> int:
    """Node's delay coercion (R9): ``after *= 1``; outside [1, 2**31-1] → 1; truncate."""
    if type(delay) is int and 1 <= delay <= TIMEOUT_MAX:
        return delay  # the common case
    after: float
    if isinstance(delay, (int, float)):
        try:
            after = float(delay)
        except OverflowError:  # an int too large for a float
            after = math.inf
    elif isinstance(delay, str):
        try:
            after = float(delay) if delay.strip() else 0.0
        except ValueError:
            after = math.nan
    elif hasattr(delay, "__float__"):
        after = float(delay)
    else:
        after = math.nan
    if not (1 <= after <= TIMEOUT_MAX):
        if after > TIMEOUT_MAX:
            warnings.warn(
                f"{delay!r} does not fit into a 32-bit signed integer.\nTimeout duration was set to 1.",
                TimeoutOverflowWarning,
                stacklevel=4,
            )
        after = 1
    return int(after)


class Timeout(events.Handle):
    """What ``set_timeout``/``set_interval`` return: Node's ``Timeout``.

    ``NodeTimers.start`` makes them: ``Timeout()`` allocates an empty one, as
    ``handles.Handle()`` does, and ``start`` sets its slots.
    """

    __slots__ = ("_msecs", "_repeat", "_start", "_owner", "_ref", "_live", "_list")
    __init__ = object.__init__

    _msecs: int
    _repeat: bool
    _start: int  # when it was (re)started, in loop ms
    _owner: NodeTimers
    _ref: bool
    _live: bool  # pending or running, and not cleared
    _list: _TimerList | None

    def _repr_info(self) -> list[str]:
        info: list[str] = super()._repr_info()  # type: ignore[misc]
        info.insert(1, f"{'interval' if self._repeat else 'timeout'}={self._msecs}ms")
        if not self._ref:
            info.append("unref")
        return info

    def ref(self) -> Timeout:
        """Make this timer keep the loop alive again (the default)."""
        if not self._ref:
            self._ref = True
            if self._live:
                self._owner.refcount += 1
        return self

    def unref(self) -> Timeout:
        """Let the loop end while this timer is pending; it still fires if the loop is alive (R26)."""
        if self._ref:
            self._ref = False
            if self._live:
                self._owner.refcount -= 1
        return self

    def has_ref(self) -> bool:
        """Whether this timer keeps the loop alive."""
        return self._ref

    def refresh(self) -> Timeout:
        """Restart from now with the same delay, at the tail of its list (R14); re-arms a fired timer."""
        if not self._cancelled:
            self._owner.insert(self, now_ms())
        return self

    def close(self) -> Timeout:
        """Cancel the timer, like ``clear_timeout``."""
        self.cancel()
        return self

    def cancel(self) -> None:
        """Cancel the timer; it never runs again, and ``refresh()`` no longer re-arms it."""
        if not self._cancelled:
            self._cancelled = True
            self._owner.retire(self)


class _TimerList:
    __slots__ = ("msecs", "expiry", "id", "timers")

    def __init__(self, msecs: int, expiry: int, list_id: int) -> None:
        self.msecs = msecs
        self.expiry = expiry
        self.id = list_id
        self.timers: OrderedDict[Timeout, None] = OrderedDict()


class NodeTimers:
    """All of one loop's Node timers: libuv sees them as a single timer (R15)."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._lists: dict[int, _TimerList] = {}
        # Entries are (expiry, id, list); an entry is stale once its list was
        # re-queued under a new id or dropped from _lists.
        self._queue: list[tuple[int, int, _TimerList]] = []
        self._ids = itertools.count()
        self.refcount = 0  # live, ref'd timers: they keep the loop alive

    def start(
        self, callback: Callable[..., object], delay: object, args: tuple[Any, ...], repeat: bool
    ) -> Timeout:
        """A new ``Timeout``, appended to its duration's list from now (``insert``'s first case)."""
        # coerce_delay's common case and insert's body for a new timer, inlined, and the
        # handle made in one call: set_timeout costs three Python calls where it cost five.
        msecs = delay if type(delay) is int and 1 <= delay <= TIMEOUT_MAX else coerce_delay(delay)
        timer: Timeout = init_handle(Timeout(), callback, args, self._loop)
        timer._msecs = msecs
        timer._repeat = repeat
        timer._owner = self
        timer._ref = True
        timer._live = True
        self.refcount += 1
        timer._start = start = int(time.monotonic() * 1000)  # now_ms(), inlined
        timer_list = self._lists.get(msecs)
        if timer_list is None:
            timer_list = self._new_list(msecs, start + msecs)
        timer_list.timers[timer] = None
        timer._list = timer_list
        return timer

    def insert(self, timer: Timeout, start: int) -> None:
        """Append ``timer`` to its duration's list, starting at ``start`` ms."""
        if timer._list is not None:
            # Node's L.append unlinks without dropping the list, which keeps its id.
            del timer._list.timers[timer]
            timer._list = None
        if not timer._live:
            timer._live = True
            if timer._ref:
                self.refcount += 1
        timer._start = start
        msecs = timer._msecs
        timer_list = self._lists.get(msecs)
        if timer_list is None:
            timer_list = self._new_list(msecs, start + msecs)
        timer_list.timers[timer] = None
        timer._list = timer_list

    def _new_list(self, msecs: int, expiry: int) -> _TimerList:
        """The list of ``msecs`` timers, made and queued: its first timer expires at ``expiry``."""
        timer_list = _TimerList(msecs, expiry, next(self._ids))
        self._lists[msecs] = timer_list
        heapq.heappush(self._queue, (expiry, timer_list.id, timer_list))
        return timer_list

    def retire(self, timer: Timeout) -> None:
        """The timer is cleared or has fired for good: unlink it and drop its ref."""
        if timer._list is not None:
            self._unlink(timer)
        if timer._live:
            timer._live = False
            if timer._ref:
                self.refcount -= 1

    def _unlink(self, timer: Timeout) -> None:
        timer_list = timer._list
        assert timer_list is not None
        del timer_list.timers[timer]
        timer._list = None
        # Node's unenroll drops a list that clearing a ref'd timer leaves empty; an unref'd
        # timer's list stays queued, empty, until it comes due ("unrefed ones are incredibly
        # likely to come from http and be recreated shortly after", lib/timers.js). A timer
        # of its duration made meanwhile joins it, and is re-queued under a new id when the
        # list comes due before it (R10): behind a list of equal expiry made in between.
        if timer._ref and not timer_list.timers and self._lists.get(timer_list.msecs) is timer_list:
            del self._lists[timer_list.msecs]
            # Node takes the list out of its queue (removeAt); here the entry stays, stale,
            # until it reaches the top. Once stale entries outnumber the lists by more than
            # _STALE_SLACK, the queue is rebuilt: set/clear cycles must not pile them up.
            if len(self._queue) > 2 * len(self._lists) + _STALE_SLACK:
                queue = self._queue
                queue[:] = [entry for entry in queue if self._current(entry)]
                heapq.heapify(queue)

    def _current(self, entry: tuple[int, int, _TimerList]) -> bool:
        """Whether a queue entry is its list's current one: not re-queued since, nor dropped."""
        _, list_id, timer_list = entry
        return timer_list.id == list_id and self._lists.get(timer_list.msecs) is timer_list

    def _top(self) -> _TimerList | None:
        queue = self._queue
        lists = self._lists
        while queue:
            _, list_id, timer_list = queue[0]
            if timer_list.id == list_id and lists.get(timer_list.msecs) is timer_list:  # _current, inlined
                return timer_list
            heapq.heappop(queue)
        return None

    def next_expiry(self) -> int | None:
        """The earliest list expiry in ms, ref'd or not (unref'd timers still bound the poll, R3)."""
        top = self._top()
        return None if top is None else top.expiry

    def due_list(self, now: int) -> _TimerList | None:
        top = self._top()
        return top if top is not None and top.expiry <= now else None

    def run_list(self, timer_list: _TimerList, now: int) -> None:
        """Node's ``listOnTimeout``: run every due timer of one list, in order, at frozen ``now``."""
        msecs = timer_list.msecs
        timers = timer_list.timers
        loop = self._loop
        run = loop._run_timed if loop._debug else run_handle
        ticks = loop._ticks
        microtasks = loop._microtasks
        timer: Any
        popfirst = timers.popitem
        while timers:
            timer = popfirst(last=False)[0]
            if now - timer._start < msecs:
                timers[timer] = None  # not due: back at the head, where it was
                timers.move_to_end(timer, last=False)
                timer_list.expiry = max(timer._start + msecs, now + 1)
                timer = None
                timer_list.id = next(self._ids)
                heapq.heappush(self._queue, (timer_list.expiry, timer_list.id, timer_list))
                return
            timer._list = None
            start = now_ms() if timer._repeat else 0  # R14: measured from callback start
            run(timer)
            # Re-armed before the drain, as Node's listOnTimeout does in its finally.
            if timer._list is None:  # not refreshed by its own callback
                if timer._repeat and not timer._cancelled:
                    self.insert(timer, start)
                elif timer._live:  # retire(), inlined: the timer is already unlinked
                    timer._live = False
                    if timer._ref:
                        self.refcount -= 1
            timer = None  # a failed callback's frames keep this frame alive (EventLoop._invoke_fast)
            if ticks or microtasks:
                loop._drain()
        if self._lists.get(msecs) is timer_list:
            del self._lists[msecs]

    def clear(self) -> None:
        self._lists.clear()
        self._queue.clear()
        self.refcount = 0
