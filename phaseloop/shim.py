"""Generator-based coroutines: ``yield`` where ``async def`` code would ``await`` (issue 4).

``@coroutine`` turns a generator function into a coroutine function whose generator is
driven by a native coroutine, so it runs on any asyncio loop and, on phaseloop, its
wake-ups are ordinary Task wake-ups (microtasks, SEMANTICS.md §3 and §8).

What the generator may yield, and what it gets back at that ``yield``:

- an awaitable (coroutine, Task, Future, another shim coroutine, anything with
  ``__await__``): its result, or its exception thrown in;
- a list or dict of awaitables: a list or dict of results, waited for concurrently; the
  first failure is thrown in after the others have been cancelled and have finished;
- nothing (a bare ``yield``): ``None`` after one loop iteration, as ``asyncio.sleep(0)``;
- anything else: a ``TypeError`` naming it, thrown in.

``yield from`` works on other shim coroutines, on plain generators that follow the same
protocol, and on native coroutines and futures (as ``@asyncio.coroutine`` allowed).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any, ParamSpec, TypeVar, cast, overload

__all__ = ["co", "coroutine"]

P = ParamSpec("P")
R = TypeVar("R")

_CancelledError = asyncio.CancelledError
_GeneratorType = types.GeneratorType
_CoroutineType = types.CoroutineType

# Frames of this module are dropped from a failure's traceback before it is thrown in at
# the user's ``yield``, so it reads: the user's generator, then the user's awaited code.
_OWN_GLOBALS = globals()


@overload
def coroutine(
    func: Callable[P, Generator[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def coroutine(
    func: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]: ...
def coroutine(func: Callable[P, Any]) -> Callable[P, Coroutine[Any, Any, Any]]:
    """Turn a generator function into a coroutine function.

    Calling the result returns a real coroutine object (so ``await``, ``create_task``
    and ``asyncio.run`` accept it); its generator starts when the coroutine first runs.
    Inside, ``x = yield awaitable`` waits and sends back the result, ``yield [a, b]`` or
    ``yield {"k": a}`` wait for all concurrently, a bare ``yield`` gives up one loop
    iteration, and ``return value`` becomes the coroutine's result.

    An ``async def`` function is returned unchanged, and a plain function's result is
    awaited if it is awaitable (as ``@asyncio.coroutine`` did), so legacy code ports by
    changing its import only.
    """
    if not callable(func):
        raise TypeError(f"coroutine() needs a generator function, not {func!r}")
    make: Callable[..., Any] = func
    if isinstance(func, types.FunctionType):
        flags = func.__code__.co_flags
        if flags & inspect.CO_COROUTINE:
            return func
        if flags & inspect.CO_ASYNC_GENERATOR:
            raise TypeError(
                f"coroutine() needs a generator function, not the async generator function {func!r}"
            )
        if flags & inspect.CO_GENERATOR and not flags & inspect.CO_ITERABLE_COROUTINE:
            make = _delegating_copy(func)

    @functools.wraps(func)
    async def shim_coroutine(*args: P.args, **kwargs: P.kwargs) -> Any:
        gen = make(*args, **kwargs)
        if not isinstance(gen, _GeneratorType):
            # A plain function, or a callable we could not inspect (a partial, a class).
            return (await gen) if _is_awaitable(gen) else gen
        send = gen.send
        result: Any = None
        error: BaseException | None = None
        cancels: _CancelsInHand | None = None

        # Each turn resumes the generator with the last result (or failure), then waits
        # for what it yielded. The generator only runs here, never inside an `except`
        # block, so exceptions it raises get no stray __context__ from ours.
        while True:
            try:
                if error is None:
                    yielded = send(result)
                else:
                    thrown, error = error, None
                    try:
                        if isinstance(thrown, _CancelledError):
                            if cancels is None:
                                cancels = _CancelsInHand()
                            yielded = cancels.throw_in(gen, thrown)
                        else:
                            yielded = gen.throw(thrown)
                    finally:
                        del thrown  # no exception -> traceback -> frame -> it cycle
                if cancels is not None and cancels.held:
                    cancels.withdraw_finished()
            except StopIteration as stop:
                if cancels is not None:
                    cancels.withdraw_all()
                return stop.value
            except BaseException:
                if cancels is not None:
                    cancels.held.clear()  # re-raised (or replaced): nothing to withdraw
                raise

            result = None
            try:
                if yielded is None:
                    result = await _to_task(None)
                elif type(yielded) is _CoroutineType:
                    result = await yielded
                elif (blocking := getattr(yielded, "_asyncio_future_blocking", None)) is not None:
                    if blocking:
                        # A future from a native `await` inside `yield from`: hand it to
                        # the Task exactly as that coroutine would have.
                        result = await _to_task(yielded)
                    else:
                        result = await yielded
                elif isinstance(yielded, (list, dict)):
                    result = await _all(yielded)
                elif _is_awaitable(yielded):
                    result = await yielded
                else:
                    error = _not_awaitable(yielded)
            except GeneratorExit:
                # This coroutine is being closed: close the generator at its `yield`.
                gen.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in at the `yield`
                error = _without_own_frames(exc)
            del yielded

    return shim_coroutine


def co(
    genfunc: Callable[P, Generator[Any, Any, R]] | Callable[P, Coroutine[Any, Any, R]],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> asyncio.Task[R]:
    """Start ``genfunc(*args, **kwargs)`` as a task on the running loop and return it.

    ``genfunc`` is a generator function (made a shim coroutine function as by
    :func:`coroutine`), a ``@coroutine``-decorated function or an ``async def``
    function. Like JavaScript's ``co(fn)``, but the result is an ``asyncio.Task``.
    """
    loop = asyncio.get_running_loop()
    shim: Callable[..., Any] | None
    if inspect.iscoroutinefunction(genfunc):
        shim = genfunc
    else:
        shim = _coroutine_cache.get(genfunc)
        if shim is None:
            shim = coroutine(genfunc)
            try:
                _coroutine_cache[genfunc] = shim
            except TypeError:  # not weak-referenceable: just don't cache
                pass
    return loop.create_task(cast(Coroutine[Any, Any, R], shim(*args, **kwargs)))


# co() on the same generator function again reuses its wrapper (a copy of the function
# with a new code object is a few microseconds, more than starting the task).
_coroutine_cache: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
    weakref.WeakKeyDictionary()
)


def _delegating_copy(func: types.FunctionType) -> types.FunctionType:
    """Copy a generator function with CO_ITERABLE_COROUTINE set.

    The flag is what lets its generator `yield from` a native coroutine (CPython refuses
    that in a plain generator), which legacy `@asyncio.coroutine` code does everywhere.
    `types.coroutine` sets it too, but on the caller's own function; we leave theirs as
    it was.
    """
    code = func.__code__
    flagged = code.replace(co_flags=code.co_flags | inspect.CO_ITERABLE_COROUTINE)
    copy = types.FunctionType(flagged, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__qualname__ = func.__qualname__
    copy.__module__ = func.__module__
    return copy


@types.coroutine
def _to_task(value: Any) -> Generator[Any, Any, Any]:
    """Yield ``value`` straight to the Task: ``None`` for one loop iteration (what
    ``asyncio.sleep(0)`` does), or a future for the Task to wait on."""
    return (yield value)


def _is_awaitable(obj: object) -> bool:
    """What ``await obj`` accepts (``inspect.isawaitable`` without the ABC check)."""
    return hasattr(type(obj), "__await__") or (
        isinstance(obj, _GeneratorType) and bool(obj.gi_code.co_flags & inspect.CO_ITERABLE_COROUTINE)
    )


def _not_awaitable(obj: object) -> TypeError:
    hint = ""
    if isinstance(obj, _GeneratorType):
        hint = " (use `yield from` to run a generator)"
    elif inspect.iscoroutinefunction(obj) or inspect.isgeneratorfunction(obj):
        hint = " (did you forget to call it?)"
    return TypeError(
        f"yielded {obj!r}, which is not awaitable; a shim coroutine may yield an"
        f" awaitable, a list or dict of awaitables, or nothing{hint}"
    )


class _CancelsInHand:
    """The CancelledErrors thrown into one generator that it has not re-raised yet.

    A generator that catches a CancelledError and goes on has withdrawn that cancel
    request, and the Task must be told (``Task.uncancel``), as an ``async def`` that
    swallows a cancellation should, or ``cancelling()`` stays raised and
    ``asyncio.timeout`` and TaskGroup misread it. But yielding again does not mean it
    went on: ``except CancelledError: yield close(); raise`` (or ``finally:``) waits
    inside its handler. While the generator is in the handler, its frame holds the
    exception, so we count references: once they are back to ours, the handler is over.
    (Rejected: uncancelling at the first yield after the throw, which leaves
    ``cancelling()`` one too low after such cleanup.) A generator that keeps the
    exception object is never taken to have withdrawn the request.
    """

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: list[BaseException] = []

    def throw_in(self, gen: Generator[Any, Any, Any], exc: BaseException) -> Any:
        self.held.append(exc)
        # Counted with exactly the references we hold after the throw, plus those of
        # our callers (the Task step delivering it), which are still on the stack.
        before = sys.getrefcount(exc)
        try:
            yielded = gen.throw(exc)
        except BaseException:  # StopIteration, or a re-raise: see the driver
            del exc  # no cycle: exception -> traceback -> this frame -> it
            raise
        if sys.getrefcount(exc) <= before:
            self.held.remove(exc)
            _uncancel_current_task()
        return yielded

    def withdraw_finished(self) -> None:
        """After a later resume: uncancel for each exception only we still hold."""
        held = self.held
        for index in range(len(held) - 1, -1, -1):
            if sys.getrefcount(held[index]) <= 2:  # the list's, and the argument's
                del held[index]
                _uncancel_current_task()

    def withdraw_all(self) -> None:
        """The generator returned: every cancel it caught was swallowed."""
        for _ in self.held:
            _uncancel_current_task()
        self.held.clear()


def _uncancel_current_task() -> None:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # driven by hand, outside a loop
        return
    if task is not None and task.cancelling() > 0:
        task.uncancel()


def _without_own_frames(exc: BaseException) -> BaseException:
    """Drop this module's frames from ``exc``'s traceback (see _OWN_GLOBALS)."""
    tb = exc.__traceback__
    kept = []
    dropped = False
    while tb is not None:
        if tb.tb_frame.f_globals is _OWN_GLOBALS:
            dropped = True
        else:
            kept.append(tb)
        tb = tb.tb_next
    if dropped:
        rebuilt = None
        for entry in reversed(kept):
            rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
        exc.__traceback__ = rebuilt
    return exc


# --- yield [a, b, ...] / yield {"k": a, ...} ------------------------------------------
#
# Each element is awaited by its own child task, which stores its result or failure in
# a shared _Gathering and, when the driver must act (all done, or the first failure),
# resolves the one future the driver waits on. Every wake-up is thus an ordinary Task
# wake-up (a microtask on phaseloop), and a failure is seen the moment it happens.


class _Gathering:
    """The state shared by the children of one list or dict ``yield``."""

    __slots__ = ("failure", "pending", "results", "waiter")

    def __init__(self, size: int, waiter: asyncio.Future[None]) -> None:
        self.results: list[Any] = [None] * size
        self.pending = size
        self.failure: BaseException | None = None
        self.waiter = waiter

    def wake(self) -> None:
        if not self.waiter.done():
            self.waiter.set_result(None)


async def _child(gathering: _Gathering, index: int, awaitable: Any) -> None:
    try:
        gathering.results[index] = await awaitable
    except BaseException as exc:
        if gathering.failure is None:
            gathering.failure = exc
        if not isinstance(exc, (Exception, _CancelledError)):
            raise  # KeyboardInterrupt, SystemExit: the loop must see them too
    finally:
        gathering.pending -= 1
        if gathering.pending == 0 or gathering.failure is not None:
            gathering.wake()


async def _all(items: list[Any] | dict[Any, Any]) -> list[Any] | dict[Any, Any]:
    """Await every element concurrently; return their results in the same shape."""
    keys = list(items) if isinstance(items, dict) else None
    values = list(items.values()) if isinstance(items, dict) else list(items)
    for value in values:
        if not (_is_awaitable(value) or isinstance(value, (list, dict))):
            _close_unstarted(values)
            raise _not_awaitable(value)
    if not values:
        return [] if keys is None else {}

    loop = asyncio.get_running_loop()
    gathering = _Gathering(len(values), loop.create_future())
    children = []
    for index, value in enumerate(values):
        if gathering.failure is not None:
            # An eager task factory ran an earlier child to its failure already.
            _close_unstarted(values[index:])
            gathering.pending -= len(values) - index
            break
        if isinstance(value, (list, dict)):
            value = _all(value)
        children.append(loop.create_task(_child(gathering, index, value)))
    del values

    try:
        if gathering.pending:
            await gathering.waiter
    except _CancelledError:
        # The outer task is cancelled: cancel the children, let them finish, then
        # throw the CancelledError in at the `yield`.
        for child in children:
            child.cancel()
        await _settle(gathering)
        gathering.failure = None  # no cycle through the children's frames
        raise
    except GeneratorExit:
        # Closed without being cancelled (a pending task destroyed): stop the children.
        for child in children:
            child.cancel()
        raise
    failure = gathering.failure
    if failure is not None:
        for child in children:
            child.cancel()
        cancelled = await _settle(gathering)
        gathering.failure = None
        try:
            if cancelled:
                raise _CancelledError()
            raise failure
        finally:
            failure = None  # no cycle: exception -> traceback -> this frame -> it
    if keys is None:
        return gathering.results
    return dict(zip(keys, gathering.results, strict=True))


async def _settle(gathering: _Gathering) -> bool:
    """Wait until every child has finished; report whether we were cancelled meanwhile.

    Children are already cancelled, so waiting is short; a cancel arriving now is held
    back until they are done, as asyncio.TaskGroup does."""
    cancelled = False
    while gathering.pending:
        gathering.waiter = asyncio.get_running_loop().create_future()
        try:
            await gathering.waiter
        except _CancelledError:
            cancelled = True
    return cancelled


def _close_unstarted(values: list[Any]) -> None:
    """Close coroutine objects we were handed but will not run (no "never awaited")."""
    for value in values:
        if isinstance(value, types.CoroutineType):
            value.close()
        elif isinstance(value, (list, dict)):
            _close_unstarted(list(value.values()) if isinstance(value, dict) else value)
