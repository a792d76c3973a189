"""phaseloop: an asyncio event loop that runs Node.js's event-loop semantics.

``asyncio.run(main(), loop_factory=phaseloop.new_event_loop)`` or
``phaseloop.run(main())``; Node's own API is in ``phaseloop.node``.
"""

from __future__ import annotations

import asyncio
import importlib
from asyncio import events, unix_events
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .handles import Immediate, PhaseHook
from .loop import PHASES, EventLoop
from .timers import Timeout, TimeoutOverflowWarning

if TYPE_CHECKING:
    from . import fs, node
    from .shim import co, coroutine

# Imported on first use (PEP 562), so that a program that only wants the loop does
# not pay for them: phaseloop.fs alone doubled the package's import time.
_LAZY: dict[str, tuple[str, str | None]] = {
    "fs": (".fs", None),
    "node": (".node", None),
    "co": (".shim", "co"),
    "coroutine": (".shim", "coroutine"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "PHASES",
    "EventLoop",
    "EventLoopPolicy",
    "Immediate",
    "PhaseHook",
    "Timeout",
    "TimeoutOverflowWarning",
    "__version__",
    "fs",
    "co",
    "coroutine",
    "new_event_loop",
    "node",
    "run",
]

_T = TypeVar("_T")


def new_event_loop(
    *, wakeups: str = "microtask", threadpool_size: int | None = None, debug: bool | None = None
) -> EventLoop:
    """A new phaseloop loop; usable as ``loop_factory`` for ``asyncio.run`` and ``asyncio.Runner``."""
    return EventLoop(wakeups=wakeups, threadpool_size=threadpool_size, debug=debug)


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None, **loop_options: Any) -> _T:
    """``asyncio.run(main)`` on a new phaseloop loop (through ``asyncio.Runner`` on every Python)."""

    def factory() -> EventLoop:
        return new_event_loop(**loop_options)

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


# The policy base is looked up by its private name first: Python 3.14 deprecates
# the public policy names, and importing phaseloop must not warn.
_PolicyBase: Any = getattr(unix_events, "_UnixDefaultEventLoopPolicy", None) or getattr(
    events, "_BaseDefaultEventLoopPolicy", None
)


class EventLoopPolicy(_PolicyBase):  # type: ignore[misc]
    """An event loop policy whose loops are phaseloop loops (for ``asyncio.set_event_loop_policy``).

    ``EventLoopPolicy(wakeups=..., threadpool_size=...)`` passes those options to each new loop.
    """

    def __init__(self, **loop_options: Any) -> None:
        super().__init__()
        self._loop_options = loop_options

    def new_event_loop(self) -> EventLoop:
        return new_event_loop(**self._loop_options)
