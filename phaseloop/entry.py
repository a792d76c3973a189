"""The entry points: ``new_event_loop``, ``run`` and ``EventLoopPolicy`` (re-exported by the package)."""

from __future__ import annotations

import asyncio
from asyncio import events, unix_events
from collections.abc import Coroutine
from typing import Any, TypeVar

from .loop import EventLoop

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
