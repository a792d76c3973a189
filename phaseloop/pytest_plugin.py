"""``pytest --loop=phaseloop``: run async tests on phaseloop, asyncio, uvloop or all of them.

Loaded through the ``pytest11`` entry point. Without ``--loop`` it does nothing. With it:

- pytest-asyncio tests get their loops from ``pytest_asyncio_loop_factories`` (the hook
  pytest-asyncio >= 1.4 documents for custom loops); ``--loop`` wins over a conftest's hook.
- anyio tests get ``anyio_backend`` parametrized as ``("asyncio", {"loop_factory": ...})``,
  once per loop, unless the test parametrizes ``anyio_backend`` itself.

``--loop`` takes ``phaseloop``, ``asyncio``, ``uvloop``, ``all``, a ``MODULE:FACTORY`` import
string, or a comma-separated list of those. This module imports only pytest and the stdlib
at load time (it is imported by every pytest run); loops are imported when first made.
See docs/testing.md.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

import pytest

LoopFactory = Callable[[], Any]

NAMED_LOOPS = ("phaseloop", "asyncio", "uvloop")
_SPECS = {
    "phaseloop": "phaseloop:new_event_loop",
    "asyncio": "asyncio:new_event_loop",
    "uvloop": "uvloop:new_event_loop",
}
_KEY = pytest.StashKey[dict[str, LoopFactory]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("phaseloop")
    group.addoption(
        "--loop",
        dest="phaseloop_loop",
        default=None,
        metavar="LOOPS",
        help="run async tests (pytest-asyncio, anyio) on these event loops: phaseloop, asyncio, uvloop, "
        "all, or MODULE:FACTORY; comma-separated for several (each test runs once per loop)",
    )


def _lazy_factory(spec: str) -> LoopFactory:
    """A factory that imports ``MODULE:ATTR`` on first use (keeps pytest start-up light)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise pytest.UsageError(f"--loop: {spec!r} is not a loop name or MODULE:FACTORY")
    if importlib.util.find_spec(module_name) is None:
        raise pytest.UsageError(f"--loop: module {module_name!r} is not installed")
    resolved: list[LoopFactory] = []

    def factory() -> Any:
        if not resolved:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            resolved.append(obj)
        return resolved[0]()

    factory.__qualname__ = factory.__name__ = f"loop_factory[{spec}]"
    return factory


def parse_loops(value: str) -> dict[str, LoopFactory]:
    """``"all"`` / ``"phaseloop,uvloop"`` / ``"pkg.mod:make_loop"`` -> {test id: loop factory}."""
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if name == "all":
            # uvloop is optional for "all": it is left out where it is not installed.
            names += [n for n in NAMED_LOOPS if n != "uvloop" or importlib.util.find_spec("uvloop")]
        elif name:
            names.append(name)
    if not names:
        raise pytest.UsageError("--loop: no loop given")
    factories: dict[str, LoopFactory] = {}
    for name in dict.fromkeys(names):
        spec = _SPECS.get(name, name)
        if ":" not in spec:
            raise pytest.UsageError(
                f"--loop: unknown loop {name!r} (phaseloop, asyncio, uvloop, all, MODULE:FACTORY)"
            )
        factories[name] = _lazy_factory(spec)
    return factories


class AsyncioLoopFactories:
    """pytest-asyncio's ``pytest_asyncio_loop_factories`` hook, registered only under ``--loop``.

    Not a module-level hook: pytest-asyncio rejects a hook implementation that returns None,
    so merely installing phaseloop must not add one.
    """

    def __init__(self, loops: dict[str, LoopFactory]) -> None:
        self.loops = loops

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_asyncio_loop_factories(
        self, config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, LoopFactory]:
        return self.loops


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("phaseloop_loop", None)
    if value:
        loops = parse_loops(str(value))
        config.stash[_KEY] = loops
        config.pluginmanager.register(AsyncioLoopFactories(loops), "phaseloop-asyncio-loop-factories")


def _loops(config: pytest.Config) -> dict[str, LoopFactory] | None:
    return config.stash.get(_KEY, None)


def pytest_report_header(config: pytest.Config) -> str | None:
    loops = _loops(config)
    return None if loops is None else "event loops (--loop): " + ", ".join(loops)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    loops = _loops(metafunc.config)
    if loops is None or "anyio_backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        if mark.args and "anyio_backend" in str(mark.args[0]):
            return  # the test chose its backends itself
    # A parametrize mark (not metafunc.parametrize) so that anyio's own parametrized
    # fixture steps aside, as it does for a user's @pytest.mark.parametrize("anyio_backend").
    params = [("asyncio", {"loop_factory": factory}) for factory in loops.values()]
    marker = pytest.mark.parametrize("anyio_backend", params, ids=list(loops), scope="module")
    metafunc.definition.add_marker(marker)
