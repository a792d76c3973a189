"""Handles that ref and unref the loop: Node's ``Immediate`` and libuv's idle/prepare/check hooks."""

from __future__ import annotations

import contextvars
from asyncio import events, format_helpers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loop import EventLoop


def init_handle(
    handle: Any, callback: Callable[..., object], args: tuple[Any, ...], loop: Any, context: Any = None
) -> Any:
    """``Handle.__init__``, minus its two Python calls when the loop is not in debug mode;
    returns ``handle``, so that ``init_handle(Handle(), ...)`` makes a handle in one call.

    The same slots get the same values; debug mode keeps the stdlib's (it records
    where the handle was created).
    """
    if loop._debug:
        events.Handle.__init__(handle, callback, args, loop, context)
        return handle
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._loop = loop
    handle._source_traceback = None
    handle._repr = None
    handle._context = contextvars.copy_context() if context is None else context
    return handle


# One empty Context shared by the pending timers, and call_soon's handles, created outside
# any context variable. A context copy is 64 bytes and a GC-tracked object per handle, and
# most pending timers (timeouts, keep-alives) are cancelled without running: the copy is
# made when the handle runs or when get_context() asks for it, so its callback still runs
# in a context of its own, as with the stdlib. The shared one is never entered.
SHARED_EMPTY_CONTEXT: contextvars.Context = contextvars.Context()


def own_context(handle: Any) -> contextvars.Context:
    """The handle's context, made its own first if it still holds the shared empty one."""
    context: contextvars.Context = handle._context
    if context is SHARED_EMPTY_CONTEXT:
        context = handle._context = contextvars.Context()
    return context


class Handle(events.Handle):
    """``asyncio.Handle`` as the loop builds it on the fast path: the same slots, set one by one.

    ``Handle()`` allocates an empty handle. Its ``__init__`` is ``object.__init__``, so the
    call goes straight to the allocator: ``object.__new__(events.Handle)`` costs 35-70 ns
    more (an argument tuple, its slice, and a check of the class's bases).
    """

    __slots__ = ()
    __init__ = object.__init__

    def get_context(self) -> contextvars.Context:
        return own_context(self)

    def _run(self) -> None:
        # Debug mode runs handles through _run (EventLoop._run_timed), whichever mode made them.
        run_handle(self)


Handle.__name__ = Handle.__qualname__ = "Handle"  # as repr() names it


class InternalCall:
    """What ``call_soon`` queues, and returns, for a callback only asyncio's own code passes
    it, where it does not queue the callback bare: in the check phase's queue, that is a
    task's own step after a bare ``yield``, and every wake-up when ``wakeups="immediate"``.

    Those are a C ``Task``'s step and ``gather``'s per-child done callback, which
    ``EventLoop.call_soon`` tells by type and by code object. The ``Task`` and the
    ``Future`` that pass them drop what ``call_soon`` returns unread, so this is the only
    object left per pending callback. It has the slots the loop's drains read and a
    handle's public methods, but it is not an ``asyncio.Handle``: 64 bytes against 96
    (104 on 3.12+), and 4 stores against 7. Where thousands of tasks start or finish at
    once (``gather`` over a tree) in "immediate" mode, that is 32-40 bytes less per task
    at the peak; in the default mode, the microtask queue holds no entry at all.

    Both are one size, so that the allocator reuses a finished step's block for the done
    callback that follows it: with steps alone made smaller, a depth-6 tree's peak RSS
    grew by 2-3 MiB, though its live bytes shrank. A task's wake-up stays a ``Handle``:
    telling it apart takes two attribute reads (``__self__``, ``_fut_waiter``) that cost
    more than the smaller object saves (``future_ping_pong`` about 4 % slower).
    """

    # _cancelled is a slot (4 slots are still 64 bytes): read from the class, it was the one
    # attribute the drains' reads could not specialize, and sleep(0) among 100 tasks ran 3 % slower.
    __slots__ = ("_callback", "_args", "_context", "_cancelled")
    __init__ = object.__init__
    _callback: Callable[..., object]
    _args: tuple[Any, ...]
    _context: contextvars.Context
    _cancelled: bool
    _source_traceback = None
    _repr = None

    def cancel(self) -> None:
        """Do not run the callback (as ``Handle.cancel``)."""
        self._cancelled = True
        self._callback = None  # type: ignore[assignment]  # as Handle.cancel, to free what it holds
        self._args = ()

    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._cancelled

    def get_context(self) -> contextvars.Context:
        """The context the callback runs in."""
        context: contextvars.Context = self._context
        return context

    def as_handle(self, loop: Any) -> events.Handle:
        """The ``asyncio.Handle`` this entry stands for: what an exception handler is given."""
        return events.Handle(self._callback, self._args, loop, self._context)

    def _run(self) -> None:
        run_handle(self)

    def __repr__(self) -> str:
        if self._cancelled:
            return "<InternalCall cancelled>"
        return f"<InternalCall {format_helpers._format_callback_source(self._callback, self._args)}>"


class Timer(events.TimerHandle):
    """``asyncio.TimerHandle`` as the loop builds it: the same slots, made as ``Handle`` is,
    and a context copy taken on demand when the timer was created in an empty context."""

    __slots__ = ()
    __init__ = object.__init__

    def get_context(self) -> contextvars.Context:
        return own_context(self)


Timer.__name__ = Timer.__qualname__ = "TimerHandle"  # as repr() names it


def run_handle(handle: Any) -> None:
    """``Handle._run`` without its ``run(callback, *args)``, whose argument tuple costs ~200 ns.

    The loop inlines this body where it runs most callbacks (EventLoop._invoke_fast,
    _drain_fast, _run_check); Node timers and anything else go through here.
    """
    args = handle._args
    context = handle._context
    if context is SHARED_EMPTY_CONTEXT:
        context = handle._context = contextvars.Context()
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


def callback_failed(handle: Any, exc: BaseException) -> None:
    """What ``Handle._run`` does with a callback's exception: hand it to the loop's handler."""
    if type(handle) is InternalCall:  # a handler is given what the stock loop would give it
        handle = handle.as_handle(events.get_running_loop())  # it runs only inside its loop
    source = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class Immediate(events.Handle):
    """What ``set_immediate`` returns: runs once in a check phase unless cleared.

    A ref'd immediate keeps the loop alive and makes the poll phase not block;
    an unref'd one does neither (R17).
    """

    __slots__ = ("_owner", "_ref", "_generation")

    def __init__(self, callback: Callable[..., object], args: tuple[Any, ...], loop: EventLoop) -> None:
        init_handle(self, callback, args, loop)
        self._owner = loop
        self._ref = True
        self._generation = loop._check_generation

    def _queued_now(self) -> bool:
        # Only immediates waiting for the *next* check phase count toward liveness.
        return not self._cancelled and self._generation == self._owner._check_generation

    def ref(self) -> Immediate:
        """Make this immediate keep the loop alive again (the default)."""
        if not self._ref:
            if self._queued_now():
                self._owner._immediate_unrefs -= 1
            self._ref = True
        return self

    def unref(self) -> Immediate:
        """Let the loop end (and the poll phase block) while this immediate is queued."""
        if self._ref:
            if self._queued_now():
                self._owner._immediate_unrefs += 1
            self._ref = False
        return self

    def has_ref(self) -> bool:
        """Whether this immediate keeps the loop alive."""
        return self._ref

    def cancel(self) -> None:
        """Cancel the immediate, like ``clear_immediate``."""
        if self._ref and self._queued_now():
            self._owner._immediate_unrefs += 1
        super().cancel()


class PhaseHook:
    """A libuv idle, prepare or check handle: its callback runs once per iteration in its phase."""

    __slots__ = ("_loop", "_hooks", "_handle", "_ref", "_active", "phase")

    def __init__(
        self,
        loop: EventLoop,
        phase: str,
        hooks: list[PhaseHook],
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        self._loop = loop
        self._hooks = hooks
        self._handle = events.Handle(callback, args, loop)  # not hot: once per hook
        self._ref = True
        self._active = True
        self.phase = phase
        # libuv inserts started handles at the head of the phase's queue.
        hooks.insert(0, self)
        loop._ref_hooks += 1
        if phase == "idle":
            loop._active_idle += 1

    def __repr__(self) -> str:
        state = "active" if self._active else "cancelled"
        return f"<PhaseHook {self.phase} {state}{'' if self._ref else ' unref'} {self._handle!r}>"

    def cancel(self) -> None:
        """Stop the hook; its callback does not run again."""
        if self._active:
            self._active = False
            self._hooks.remove(self)
            if self._ref:
                self._loop._ref_hooks -= 1
            if self.phase == "idle":
                self._loop._active_idle -= 1

    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return not self._active

    def ref(self) -> PhaseHook:
        """Make an active hook keep the loop alive (the default)."""
        if not self._ref:
            self._ref = True
            if self._active:
                self._loop._ref_hooks += 1
        return self

    def unref(self) -> PhaseHook:
        """Let the loop end while this hook is active."""
        if self._ref:
            self._ref = False
            if self._active:
                self._loop._ref_hooks -= 1
        return self

    def has_ref(self) -> bool:
        """Whether this hook keeps the loop alive while active."""
        return self._ref
