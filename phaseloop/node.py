"""Node's timer and queue API, in milliseconds, on the running phaseloop loop (SEMANTICS §4).

Every function acts on the running phaseloop loop and raises ``RuntimeError``
when there is none (or when the running loop is another kind of loop).
"""

from __future__ import annotations

import asyncio
from asyncio import coroutines, events
from collections.abc import Callable
from typing import Any, NoReturn

from .handles import Handle, Immediate, init_handle
from .loop import EventLoop
from .timers import TIMEOUT_MAX, Timeout, TimeoutOverflowWarning

__all__ = [
    "TIMEOUT_MAX",
    "Immediate",
    "Timeout",
    "TimeoutOverflowWarning",
    "clear_immediate",
    "clear_interval",
    "clear_timeout",
    "next_tick",
    "on_before_exit",
    "queue_microtask",
    "run",
    "set_immediate",
    "set_interval",
    "set_timeout",
]


_get_running_loop = events._get_running_loop


def _refuse(name: str, callback: object, loop: object) -> NoReturn:
    """Why ``name(callback)`` cannot run: ``callback`` is not callable, or no phaseloop loop runs.

    Each function checks the fast case itself (one call, two C checks) and calls this
    only when the check fails: a call less per callback than asking for the loop here.
    """
    if not callable(callback):
        raise TypeError(f"phaseloop.node.{name}() expects a callable, got {callback!r}")
    if loop is None:
        raise RuntimeError(
            f"phaseloop.node.{name}() needs a running phaseloop loop, and no event loop is running "
            "(call it inside phaseloop.node.run(), phaseloop.run() or a callback of a phaseloop loop)"
        )
    raise RuntimeError(
        f"phaseloop.node.{name}() needs a running phaseloop loop, "
        f"but the running loop is {type(loop).__module__}.{type(loop).__qualname__}"
    )


def set_timeout(callback: Callable[..., object], delay: object = 1, *args: Any) -> Timeout:
    """Call ``callback(*args)`` once, ``delay`` ms from now (coerced as Node does, R9)."""
    loop = _get_running_loop()
    if not isinstance(loop, EventLoop) or not callable(callback):
        _refuse("set_timeout", callback, loop)
    return loop._node_timers.start(callback, delay, args, repeat=False)


def set_interval(callback: Callable[..., object], delay: object = 1, *args: Any) -> Timeout:
    """Call ``callback(*args)`` every ``delay`` ms, measured from each call's start (R14)."""
    loop = _get_running_loop()
    if not isinstance(loop, EventLoop) or not callable(callback):
        _refuse("set_interval", callback, loop)
    return loop._node_timers.start(callback, delay, args, repeat=True)


def clear_timeout(timeout: Timeout | None) -> None:
    """Cancel a timer from ``set_timeout`` or ``set_interval``; None and cleared timers are fine."""
    if timeout is None:
        return
    if not isinstance(timeout, Timeout):
        raise TypeError(f"clear_timeout() expects a Timeout or None, got {timeout!r}")
    timeout.cancel()


def clear_interval(timeout: Timeout | None) -> None:
    """The same as ``clear_timeout`` (as in Node)."""
    clear_timeout(timeout)


def set_immediate(callback: Callable[..., object], *args: Any) -> Immediate:
    """Call ``callback(*args)`` in the next check phase (R16)."""
    loop = _get_running_loop()
    if not isinstance(loop, EventLoop) or not callable(callback):
        _refuse("set_immediate", callback, loop)
    immediate = Immediate(callback, args, loop)
    loop._immediates.append(immediate)
    return immediate


def clear_immediate(immediate: Immediate | None) -> None:
    """Cancel an immediate from ``set_immediate``; None and cleared immediates are fine."""
    if immediate is None:
        return
    if not isinstance(immediate, Immediate):
        raise TypeError(f"clear_immediate() expects an Immediate or None, got {immediate!r}")
    immediate.cancel()


def next_tick(callback: Callable[..., object], *args: Any) -> None:
    """Queue ``callback(*args)`` on the nextTick queue: it runs before any microtask (R19)."""
    loop = _get_running_loop()
    if not isinstance(loop, EventLoop) or not callable(callback):
        _refuse("next_tick", callback, loop)
    loop._ticks.append(init_handle(Handle(), callback, args, loop))


def queue_microtask(callback: Callable[..., object], *args: Any) -> None:
    """Queue ``callback(*args)`` on the microtask queue, with the promise-like wake-ups (R18)."""
    loop = _get_running_loop()
    if not isinstance(loop, EventLoop) or not callable(callback):
        _refuse("queue_microtask", callback, loop)
    loop._microtasks.append(init_handle(Handle(), callback, args, loop))


def on_before_exit(callback: Callable[..., object], *args: Any) -> None:
    """Node's ``process.on('beforeExit')``: called each time ``run()``'s loop runs out of work (R27)."""
    loop = _get_running_loop()
    if not isinstance(loop, EventLoop) or not callable(callback):
        _refuse("on_before_exit", callback, loop)
    loop._add_before_exit(callback, args)


def run(main: Any, /, **loop_options: Any) -> Any:
    """Run ``main()`` as Node runs a script, and return its result (R1, R5, R27).

    ``main()`` is called synchronously inside a new phaseloop loop; a coroutine
    it returns (or a coroutine given instead of a function) becomes a task.
    Then the tick and microtask queues drain, the loop runs while anything
    ref'd is alive, ``on_before_exit`` callbacks may revive it, and the loop is
    closed. ``loop_options`` are those of ``phaseloop.new_event_loop``.
    """
    if not callable(main) and not coroutines.iscoroutine(main):
        raise TypeError(f"run() expects a function or a coroutine, got {main!r}")
    loop = EventLoop(**loop_options)
    outcome: list[Any] = []

    def script() -> None:
        result = main() if callable(main) else main
        if coroutines.iscoroutine(result):
            result = loop.create_task(result)
        outcome.append(result)

    try:
        loop._run_script(script)
        result = outcome[0]
        if isinstance(result, asyncio.Task):
            if not result.done():
                result.cancel()
                raise RuntimeError(
                    "the main coroutine was still waiting when the loop ran out of work "
                    "(nothing ref'd was left that could wake it)"
                )
            return result.result()
        return result
    finally:
        try:
            if loop._asyncgens:
                loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
