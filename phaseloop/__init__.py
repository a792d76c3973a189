"""phaseloop: an asyncio event loop that runs Node.js's event-loop semantics.

``asyncio.run(main(), loop_factory=phaseloop.new_event_loop)`` or
``phaseloop.run(main())``; Node's own API is in ``phaseloop.node``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import fs, node
    from .entry import EventLoopPolicy, new_event_loop, run
    from .handles import Immediate, PhaseHook
    from .loop import PHASES, EventLoop
    from .shim import co, coroutine
    from .timers import Timeout, TimeoutOverflowWarning

# Every name is imported on first use (PEP 562). ``import phaseloop`` alone loads
# nothing else: pytest imports the package for its plugin (phaseloop.pytest_plugin)
# in every run, and asyncio alone costs ~25 ms there. phaseloop.fs alone doubled
# the package's own import time.
_LAZY: dict[str, tuple[str, str | None]] = {
    "EventLoop": (".loop", "EventLoop"),
    "PHASES": (".loop", "PHASES"),
    "new_event_loop": (".entry", "new_event_loop"),
    "run": (".entry", "run"),
    "EventLoopPolicy": (".entry", "EventLoopPolicy"),
    "Immediate": (".handles", "Immediate"),
    "PhaseHook": (".handles", "PhaseHook"),
    "Timeout": (".timers", "Timeout"),
    "TimeoutOverflowWarning": (".timers", "TimeoutOverflowWarning"),
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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
