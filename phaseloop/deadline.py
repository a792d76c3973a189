"""A timerfd for the poll phase's short waits where ``os`` has none: Linux on 3.11 and 3.12.

A timerfd's expiry has no timer slack; ``select()``'s timeout ends up to 50 us after its
deadline (docs/semantics.md, "How precisely the poll waits"). 3.13's ``os`` has
``timerfd_create``; before it, libc's is reached through ``ctypes``. ``ctypes`` costs about
4.5 ms and a third of a MiB to load, so the loop loads this module at its first short
wait, not when it is made: programs without short timers never pay for it.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

_TFD_TIMER_ABSTIME = 1  # <sys/timerfd.h>; TFD_CLOEXEC is O_CLOEXEC on every architecture

# libc's timerfd_create and timerfd_settime, looked up once per process; () where there
# are none (a libc without them).
_libc_calls: tuple[Any, ...] | None = None


def _load_libc() -> tuple[Any, ...]:
    global _libc_calls
    if _libc_calls is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _libc_calls = (libc.timerfd_create, libc.timerfd_settime)
        except (OSError, AttributeError):
            _libc_calls = ()
    return _libc_calls


def open_deadline_timer() -> tuple[int, Callable[[int, float], None]] | None:
    """A timerfd on the monotonic clock (``time.monotonic``'s) and the function that arms
    it to an absolute deadline in seconds, or None where libc has no timerfd.

    Each timerfd gets an ``itimerspec`` of its own, so loops in different threads never
    share one. Arming with a deadline already past makes the timerfd readable at once.
    """
    calls = _load_libc()
    if not calls:
        return None
    create, settime = calls
    fd: int = create(time.CLOCK_MONOTONIC, os.O_CLOEXEC)
    if fd < 0:
        return None
    # struct itimerspec {it_interval, it_value}, each {tv_sec, tv_nsec}: four C longs, and
    # an interval of zero (one expiry per arming).
    spec = (ctypes.c_long * 4)()
    fields = memoryview(spec).cast("B").cast("l")
    spec_ref = ctypes.byref(spec)

    def arm(fd: int, when: float) -> None:
        # A deadline of exactly zero would disarm the timerfd; the monotonic clock is past it.
        fields[2], fields[3] = divmod(int(when * 1e9), 1_000_000_000)
        if settime(fd, _TFD_TIMER_ABSTIME, spec_ref, None):
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))

    return fd, arm
