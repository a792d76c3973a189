"""Where a plain asyncio callback goes: SEMANTICS §3, decided by the callback's type.

``call_soon`` cannot see *why* it was called, only *what* it was given, so the
route is read off the callable itself (never off the stack):

* a task step: a new task's first step is a promise reaction (microtask); a step
  scheduled by the running task for itself is a bare ``yield`` (check queue);
* ``cb(future)``: a Future done-callback or a Task wake-up (microtask);
* a transport's ``_call_connection_lost`` or a protocol's ``connection_lost``:
  a ``uv_close`` callback (close phase);
* a protocol method, a transport's deferred ``_add_reader`` and the waiter
  it resolves: the rest of an I/O callback, deferred by the stdlib transport.
  They go to the microtask queue whatever the wake-up mode, so they run right
  after the callback that queued them (in the poll phase, when a transport is
  born from I/O) and stay in FIFO order with the wake-ups queued beside them,
  which the stdlib relies on (``connection_made`` before the waiter resolves);
* anything else: ``setImmediate`` (check queue).
"""

from __future__ import annotations

import asyncio
import types
from asyncio import futures, protocols, tasks
from collections import deque
from collections.abc import Callable
from typing import Any, Final

WAKEUP_MODES: Final = ("microtask", "immediate")

# The C Task schedules its steps through a private wrapper type; fetch it
# from a throwaway task rather than by name, which CPython does not export.
FUTURE_TYPES: tuple[type, ...] = tuple({asyncio.Future, futures._PyFuture})  # type: ignore[attr-defined]
current_task: Final = tasks.current_task
_PY_TASK_STEP: Final = tasks._PyTask._Task__step  # type: ignore[attr-defined]
_CLOSE_NAMES: Final = frozenset({"_call_connection_lost", "connection_lost"})
_DEFERRED_IO_NAMES: Final = frozenset({"_add_reader"})
DEFERRED_IO_FUNCTIONS: Final = frozenset({futures._set_result_unless_cancelled})  # type: ignore[attr-defined]
_ROUTE_CACHE_SIZE: Final = 1024  # classes whose methods' routes the router remembers


def _c_task_step_type() -> type | None:
    seen: list[type] = []

    class _Probe:
        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
            seen.append(type(callback))

        def get_debug(self) -> bool:
            return False

        def call_exception_handler(self, context: dict[str, Any]) -> None:
            pass

    async def _nothing() -> None:
        pass

    coro = _nothing()
    try:
        probe: Any = _Probe()
        task = asyncio.Task(coro, loop=probe)
        task._log_destroy_pending = False  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - an exotic Task; fall back to the Python rules
        return None
    finally:
        coro.close()
    step = seen[0] if seen else None
    return None if step in (types.MethodType, None) else step


C_TASK_STEP: Final = _c_task_step_type()


def _gather_done_code() -> types.CodeType | None:
    # gather's per-child done callback is a closure made per call: call_soon knows it by its code.
    for const in tasks.gather.__code__.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == "_done_callback":
            return const
    return None  # pragma: no cover - a gather without the closure: nothing is treated as internal


GATHER_DONE_CODE: Final = _gather_done_code()


class Router:
    """Picks the queue for each ``call_soon`` callback of one loop; caches what it learns per method.

    ``route`` returns the queue's append method itself, so that ``call_soon``
    spends one call on routing.
    """

    __slots__ = ("_loop", "_micro", "_check", "_close", "_wakeup", "method_routes")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        wakeups: str,
        microtasks: deque[Any],
        immediates: deque[Any],
        closing: deque[Any],
    ) -> None:
        self._loop = loop
        self._micro = microtasks.append
        self._check = immediates.append
        self._close = closing.appendleft  # libuv runs the most recently closed first
        # With wakeups="immediate" every promise-like wake-up becomes an immediate.
        self._wakeup = self._micro if wakeups == "microtask" else self._check
        # What route_other learned about bound methods: class -> function -> route. The loop's
        # call_soon reads it directly; only route_other writes it.
        self.method_routes: dict[type, dict[Any, Callable[[Any], None]]] = {}

    def route(self, callback: Callable[..., object], args: tuple[Any, ...]) -> Callable[[Any], None]:
        kind = type(callback)
        if kind is C_TASK_STEP:
            # A task that reschedules itself while running did a bare ``yield``.
            if current_task(self._loop) is callback.__self__:  # type: ignore[attr-defined]
                return self._check
            return self._wakeup
        if len(args) == 1 and isinstance(args[0], FUTURE_TYPES):
            return self._wakeup
        if kind is types.FunctionType:
            return self._micro if callback in DEFERRED_IO_FUNCTIONS else self._check
        return self.route_other(callback)

    def route_other(self, callback: Callable[..., object]) -> Callable[[Any], None]:
        """The route of a callback that is neither a C task step, nor ``cb(future)``, nor a function."""
        if type(callback) is types.MethodType:
            func = callback.__func__
            if func is _PY_TASK_STEP:
                if current_task(self._loop) is callback.__self__:
                    return self._check
                return self._wakeup
            # A route depends on the function's name and on what it is bound to (a protocol or
            # not): cached per class, then per function. Forgotten when full: classes made on
            # the fly (a factory's local class) would otherwise pile up without end.
            cls = type(callback.__self__)
            routes = self.method_routes.get(cls)
            if routes is None:
                if len(self.method_routes) >= _ROUTE_CACHE_SIZE:
                    self.method_routes.clear()
                routes = self.method_routes[cls] = {}
            route = routes.get(func)
            if route is None:
                route = routes[func] = self._method_route(callback)
            return route
        return self._check

    def _method_route(self, method: Any) -> Callable[[Any], None]:
        name = method.__func__.__name__
        is_protocol = isinstance(method.__self__, protocols.BaseProtocol)
        if name == "_call_connection_lost" or (is_protocol and name in _CLOSE_NAMES):
            return self._close
        if is_protocol or name in _DEFERRED_IO_NAMES:
            return self._micro
        return self._check
