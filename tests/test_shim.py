"""The generator shim (issue 4, SEMANTICS.md §8): each scenario runs on asyncio, uvloop
and phaseloop, and asserts what happens, and in what order, as an exact list."""

# mypy: disable-error-code="misc"
# (mypy has no type for `yield from` a coroutine, which legacy-style code does on purpose)

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import os
import subprocess
import sys
import traceback
import types
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from phaseloop.shim import co, coroutine

pytestmark = pytest.mark.timeout(10)

REPO = Path(__file__).resolve().parent.parent

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop has no wheel for this platform
    uvloop = None  # type: ignore[assignment]

PHASELOOP_MISSING = ""
try:
    from phaseloop import new_event_loop as phaseloop_new_event_loop
except ImportError as exc:  # the loop itself is built alongside (issue 1)
    phaseloop_new_event_loop = None  # type: ignore[assignment]
    PHASELOOP_MISSING = f"phaseloop.new_event_loop is not importable yet: {exc}"

LOOPS = [
    pytest.param(asyncio.new_event_loop, id="asyncio"),
    pytest.param(
        uvloop and uvloop.new_event_loop,
        id="uvloop",
        marks=pytest.mark.skipif(uvloop is None, reason="uvloop is not installed"),
    ),
    pytest.param(
        phaseloop_new_event_loop,
        id="phaseloop",
        marks=pytest.mark.skipif(phaseloop_new_event_loop is None, reason=PHASELOOP_MISSING),
    ),
]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    """``run(coro)``: run it to completion on a fresh loop of the parametrized kind."""
    factory = request.param

    def run(coro: Any) -> Any:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)

    run.loop_name = request.node.callspec.id  # type: ignore[attr-defined]
    return run


def future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@coroutine
def double_after_a_turn(x: int) -> Generator[Any, Any, int]:
    yield
    return 2 * x


@coroutine
def fail_after_a_turn(message: str) -> Generator[Any, Any, None]:
    yield
    raise ValueError(message)


@coroutine
def wait_forever(log: list[str], name: str) -> Generator[Any, Any, None]:
    log.append(f"{name} waits")
    try:
        yield future()
    finally:
        log.append(f"{name} finally")


# --- yield awaitable ----------------------------------------------------------------


def test_yield_native_coroutine_sends_back_its_result(run: Any) -> None:
    async def native() -> str:
        await asyncio.sleep(0)
        return "native"

    @coroutine
    def main() -> Generator[Any, Any, str]:
        value = yield native()
        return f"got {value}"

    assert run(main()) == "got native"


def test_yield_task_sends_back_its_result(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, Any]:
        task = asyncio.get_running_loop().create_task(double_after_a_turn(4))
        return (yield task)

    assert run(main()) == 8


def test_yield_future_waits_until_it_is_resolved(run: Any) -> None:
    log: list[str] = []

    async def resolve(fut: asyncio.Future[str]) -> None:
        log.append("resolving")
        fut.set_result("value")

    @coroutine
    def main() -> Generator[Any, Any, None]:
        fut = future()
        asyncio.get_running_loop().create_task(resolve(fut))
        log.append("waiting")
        log.append(f"got {(yield fut)}")

    run(main())
    assert log == ["waiting", "resolving", "got value"]


def test_yield_another_shim_coroutine_sends_back_its_result(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, Any]:
        return (yield double_after_a_turn(21))

    assert run(main()) == 42


def test_yield_object_with_dunder_await_sends_back_its_result(run: Any) -> None:
    class Answer:
        def __await__(self) -> Generator[Any, Any, int]:
            return double_after_a_turn(21).__await__()

    @coroutine
    def main() -> Generator[Any, Any, Any]:
        return (yield Answer())

    assert run(main()) == 42


def test_shim_coroutine_is_awaited_by_async_def_code(run: Any) -> None:
    async def main() -> int:
        return await double_after_a_turn(5) + 1

    assert run(main()) == 11


# --- yield [a, b] / yield {"k": a} --------------------------------------------------


def test_yield_list_waits_for_all_concurrently(run: Any) -> None:
    # a cannot finish until b has started, and b not until a has finished: run one
    # after the other, this deadlocks (and the timeout fails the test).
    log: list[str] = []

    @coroutine
    def main() -> Generator[Any, Any, Any]:
        a_may_end, b_may_end = future(), future()

        async def a() -> str:
            log.append("a starts")
            await a_may_end
            log.append("a ends")
            b_may_end.set_result(None)
            return "A"

        async def b() -> str:
            log.append("b starts")
            a_may_end.set_result(None)
            await b_may_end
            log.append("b ends")
            return "B"

        return (yield [a(), b()])

    assert run(main()) == ["A", "B"]
    assert log == ["a starts", "b starts", "a ends", "b ends"]


def test_yield_dict_sends_back_a_dict_with_the_same_keys(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, Any]:
        done = future()
        done.set_result(3)
        return (yield {"x": double_after_a_turn(1), "y": done, "z": asyncio.sleep(0, 7)})

    assert run(main()) == {"x": 2, "y": 3, "z": 7}


def test_yield_empty_list_and_dict_send_back_empty_ones(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, tuple[Any, Any]]:
        return (yield []), (yield {})

    assert run(main()) == ([], {})


def test_yield_nested_list_and_dict_wait_for_everything(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, Any]:
        return (yield [double_after_a_turn(1), {"k": [double_after_a_turn(2)]}])

    assert run(main()) == [2, {"k": [4]}]


def test_yield_list_throws_first_failure_in_after_cancelling_the_others(
    run: Any,
) -> None:
    log: list[str] = []
    boom = ValueError("a failed")

    async def fails() -> None:
        log.append("a starts")
        await asyncio.sleep(0)
        raise boom

    @coroutine
    def main() -> Generator[Any, Any, None]:
        try:
            yield [fails(), wait_forever(log, "b"), wait_forever(log, "c")]
        except ValueError as exc:
            log.append(f"caught {exc}")
            assert exc is boom

    run(main())
    assert log == [
        "a starts",
        "b waits",
        "c waits",
        "b finally",
        "c finally",
        "caught a failed",
    ]


def test_yield_list_failure_cancels_futures_and_tasks_it_was_given(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, tuple[bool, bool]]:
        fut = future()
        task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        with pytest.raises(ValueError, match="first"):
            yield [fut, task, fail_after_a_turn("first")]
        return fut.cancelled(), task.cancelled()

    assert run(main()) == (True, True)


def test_yield_list_with_a_non_awaitable_throws_type_error_and_starts_nothing(
    run: Any,
) -> None:
    log: list[str] = []

    @coroutine
    def main() -> Generator[Any, Any, str]:
        try:
            yield [wait_forever(log, "a"), "not awaitable"]
        except TypeError as exc:
            return str(exc)
        return "no error"

    message = run(main())
    assert "'not awaitable'" in message
    assert log == []  # wait_forever never started (and was closed: no warning)


# --- exceptions are thrown in at the yield ------------------------------------------


def test_exception_from_awaited_is_thrown_in_at_the_yield(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def main() -> Generator[Any, Any, str]:
        try:
            yield fail_after_a_turn("boom")
        except ValueError as exc:
            log.append(f"caught {exc}")
        log.append("goes on")
        return (yield double_after_a_turn(1)) and "done"

    assert run(main()) == "done"
    assert log == ["caught boom", "goes on"]


def test_exception_set_on_a_future_is_thrown_in(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, str]:
        fut = future()
        asyncio.get_running_loop().call_soon(fut.set_exception, KeyError("k"))
        try:
            yield fut
        except KeyError as exc:
            return f"caught {exc}"
        return "no error"

    assert run(main()) == "caught 'k'"


def test_uncaught_exception_fails_the_coroutine_with_the_same_object(
    run: Any,
) -> None:
    boom = ValueError("boom")

    @coroutine
    def main() -> Generator[Any, Any, None]:
        yield
        raise boom

    with pytest.raises(ValueError) as info:
        run(main())
    assert info.value is boom


def test_traceback_shows_the_generators_own_frames(run: Any) -> None:
    @coroutine
    def outer() -> Generator[Any, Any, None]:
        yield middle()

    @coroutine
    def middle() -> Generator[Any, Any, None]:
        yield fail_after_a_turn("deep")

    with pytest.raises(ValueError) as info:
        run(outer())
    frames = [
        (Path(f.filename).name, f.name, f.line)
        for f in traceback.extract_tb(info.value.__traceback__)
        if Path(f.filename).name in ("test_shim.py", "shim.py")
    ]
    assert frames == [
        ("test_shim.py", "test_traceback_shows_the_generators_own_frames", "run(outer())"),
        ("test_shim.py", "run", "return runner.run(coro)"),
        ("shim.py", "shim_coroutine", "yielded = gen.throw(thrown)"),
        ("test_shim.py", "outer", "yield middle()"),
        ("test_shim.py", "middle", 'yield fail_after_a_turn("deep")'),
        ("test_shim.py", "fail_after_a_turn", "raise ValueError(message)"),
    ]


def test_traceback_of_a_list_failure_shows_the_generator_then_the_child(
    run: Any,
) -> None:
    @coroutine
    def main() -> Generator[Any, Any, None]:
        yield [double_after_a_turn(1), fail_after_a_turn("child")]

    with pytest.raises(ValueError) as info:
        run(main())
    names = [
        f.name
        for f in traceback.extract_tb(info.value.__traceback__)
        if Path(f.filename).name == "test_shim.py"
    ]
    assert names[-2:] == ["main", "fail_after_a_turn"]
    assert names.count("main") == 1


# --- cancellation -------------------------------------------------------------------


def test_cancel_throws_cancelled_error_in_and_finally_runs(run: Any) -> None:
    log: list[str] = []

    async def main() -> None:
        task = co(wait_forever, log, "shim")
        await asyncio.sleep(0)
        task.cancel("stop")
        with pytest.raises(asyncio.CancelledError):
            await task
        log.append(f"cancelled={task.cancelled()}")

    run(main())
    assert log == ["shim waits", "shim finally", "cancelled=True"]


def test_cancel_can_be_cleaned_up_after_and_reraised(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, None]:
        try:
            yield future()
        except asyncio.CancelledError as exc:
            log.append(f"cleaning up after {exc.args}")
            yield double_after_a_turn(1)  # cleanup may wait, too
            log.append("cleaned up")
            raise

    async def main() -> None:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel("stop")
        with pytest.raises(asyncio.CancelledError):
            await task
        log.append(f"cancelled={task.cancelled()} cancelling={task.cancelling()}")

    run(main())
    assert log == [
        "cleaning up after ('stop',)",
        "cleaned up",
        "cancelled=True cancelling=1",
    ]


def test_cleanup_in_finally_may_wait_and_the_task_stays_cancelled(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, None]:
        task = asyncio.current_task()
        assert task is not None
        try:
            yield future()
        finally:
            log.append(f"finally, cancelling={task.cancelling()}")
            yield double_after_a_turn(1)
            log.append(f"after cleanup wait, cancelling={task.cancelling()}")

    async def main() -> None:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        log.append(f"cancelled={task.cancelled()} cancelling={task.cancelling()}")

    run(main())
    assert log == [
        "finally, cancelling=1",
        "after cleanup wait, cancelling=1",
        "cancelled=True cancelling=1",
    ]


def test_cancel_is_withdrawn_when_the_handler_ends_not_at_its_first_yield(
    run: Any,
) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, str]:
        task = asyncio.current_task()
        assert task is not None
        try:
            yield future()
        except asyncio.CancelledError:
            yield double_after_a_turn(1)
            log.append(f"waited in handler, cancelling={task.cancelling()}")
        yield
        log.append(f"handler over, cancelling={task.cancelling()}")
        return "went on"

    async def main() -> str:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel()
        return await task

    assert run(main()) == "went on"
    assert log == ["waited in handler, cancelling=1", "handler over, cancelling=0"]


def test_swallowed_cancel_keeps_running_and_uncancels_the_task(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, str]:
        task = asyncio.current_task()
        assert task is not None
        try:
            yield future()
        except asyncio.CancelledError:
            log.append(f"swallowed, cancelling={task.cancelling()}")
        yield
        log.append(f"next yield, cancelling={task.cancelling()}")
        try:
            yield future()
        except asyncio.CancelledError:
            log.append(f"cancelled again, cancelling={task.cancelling()}")
            raise
        return "unreachable"

    async def main() -> None:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        log.append(f"still running={not task.done()}")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert log == [
        "swallowed, cancelling=1",
        "next yield, cancelling=0",
        "still running=True",
        "cancelled again, cancelling=1",
    ]


def test_swallowed_cancel_then_return_gives_a_result(run: Any) -> None:
    @coroutine
    def shim() -> Generator[Any, Any, str]:
        try:
            yield future()
        except asyncio.CancelledError:
            return "handled"
        return "not cancelled"

    async def main() -> tuple[str, int]:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel()
        return await task, task.cancelling()

    assert run(main()) == ("handled", 0)


def test_cancel_during_list_cancels_the_children_before_throwing_in(
    run: Any,
) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, None]:
        try:
            yield [wait_forever(log, "a"), {"b": wait_forever(log, "b")}]
        except asyncio.CancelledError:
            log.append("shim sees CancelledError")
            raise

    async def main() -> None:
        task = co(shim)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert log == [
        "a waits",
        "b waits",
        "a finally",
        "b finally",
        "shim sees CancelledError",
    ]


def test_cancel_during_bare_yield_is_thrown_in(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, None]:
        try:
            while True:
                yield
        except asyncio.CancelledError:
            log.append("cancelled at bare yield")
            raise

    async def main() -> None:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert log == ["cancelled at bare yield"]


def test_cancel_during_yield_from_native_coroutine_is_thrown_in(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, str]:
        task = asyncio.current_task()
        assert task is not None
        try:
            yield from asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("cancelled inside yield from")
        yield
        log.append(f"cancelling={task.cancelling()}")
        return "recovered"

    async def main() -> str:
        task = co(shim)
        await asyncio.sleep(0)
        task.cancel()
        return await task

    assert run(main()) == "recovered"
    assert log == ["cancelled inside yield from", "cancelling=0"]


def test_asyncio_timeout_cancels_a_shim_coroutine(run: Any) -> None:
    log: list[str] = []

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await wait_forever(log, "shim")
        task = asyncio.current_task()
        assert task is not None
        log.append(f"cancelling={task.cancelling()}")

    run(main())
    assert log == ["shim waits", "shim finally", "cancelling=0"]


# --- return, yield from, bare yield -------------------------------------------------


def test_return_value_becomes_the_result(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, str]:
        yield
        return "result"

    assert run(main()) == "result"


def test_yield_from_another_shim_coroutine_returns_its_value(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, Any]:
        first = yield from double_after_a_turn(2)
        second = yield from double_after_a_turn(first)
        return second

    assert run(main()) == 8


def test_yield_from_plain_generator_follows_the_same_protocol(run: Any) -> None:
    def plain(x: int) -> Generator[Any, Any, int]:
        doubled = yield double_after_a_turn(x)
        pair = yield [double_after_a_turn(x), asyncio.sleep(0, x)]
        yield
        return int(doubled + sum(pair))

    @coroutine
    def main() -> Generator[Any, Any, int]:
        return (yield from plain(1))

    assert run(main()) == 5


def test_yield_from_native_coroutine_and_future_works_as_in_asyncio_coroutine(
    run: Any,
) -> None:
    @coroutine
    def main() -> Generator[Any, Any, tuple[Any, Any]]:
        slept = yield from asyncio.sleep(0, "slept")
        fut = future()
        asyncio.get_running_loop().call_soon(fut.set_result, "resolved")
        resolved = yield from fut
        return slept, resolved

    assert run(main()) == ("slept", "resolved")


def test_bare_yield_gives_one_loop_iteration_like_sleep_zero(run: Any) -> None:
    log: list[str] = []

    async def native() -> None:
        for i in range(3):
            log.append(f"native {i}")
            await asyncio.sleep(0)

    @coroutine
    def shim() -> Generator[Any, Any, None]:
        for i in range(3):
            log.append(f"shim {i}")
            sent = yield
            assert sent is None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(loop.create_task(native()), loop.create_task(shim()))

    run(main())
    assert log == ["native 0", "shim 0", "native 1", "shim 1", "native 2", "shim 2"]


def test_bare_yield_lets_a_queued_callback_run(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def main() -> Generator[Any, Any, None]:
        asyncio.get_running_loop().call_soon(log.append, "callback")
        log.append("before yield")
        yield
        log.append("after yield")

    run(main())
    assert log == ["before yield", "callback", "after yield"]


# --- yield something that is not awaitable ------------------------------------------


def test_yield_non_awaitable_throws_type_error_naming_it(run: Any) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<the Thing>"

    @coroutine
    def main() -> Generator[Any, Any, str]:
        try:
            yield Thing()
        except TypeError as exc:
            return str(exc)
        return "no error"

    message = run(main())
    assert message.startswith("yielded <the Thing>, which is not awaitable")


def test_uncaught_type_error_points_at_the_yield(run: Any) -> None:
    @coroutine
    def main() -> Generator[Any, Any, None]:
        yield 42

    with pytest.raises(TypeError, match="yielded 42, which is not awaitable") as info:
        run(main())
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.name, last.line) == ("main", "yield 42")


def test_yield_plain_generator_hints_at_yield_from(run: Any) -> None:
    def plain() -> Generator[None, None, None]:
        yield

    @coroutine
    def main() -> Generator[Any, Any, None]:
        yield plain()

    with pytest.raises(TypeError, match="use `yield from`"):
        run(main())


# --- contextvars --------------------------------------------------------------------

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def test_contextvars_persist_across_yields_and_stay_in_the_task(run: Any) -> None:
    seen: list[str] = []

    @coroutine
    def child(name: str) -> Generator[Any, Any, None]:
        seen.append(f"{name} sees {var.get()}")
        var.set(name)
        yield

    @coroutine
    def main() -> Generator[Any, Any, None]:
        var.set("main")
        yield
        seen.append(f"after yield {var.get()}")
        yield co(child, "task")
        yield [child("a"), child("b")]
        yield child("awaited")  # awaited in this task: shares its context, as await does
        seen.append(f"main ends with {var.get()}")

    run(main())
    assert seen == [
        "after yield main",
        "task sees main",
        "a sees main",
        "b sees main",
        "awaited sees main",
        "main ends with awaited",
    ]
    assert var.get() == "unset"


# --- co() and the decorator ---------------------------------------------------------


def test_co_starts_a_task_and_returns_it(run: Any) -> None:
    log: list[str] = []

    def gen(a: int, *, b: int) -> Generator[Any, Any, int]:
        log.append("started")
        yield
        return a + b

    async def main() -> int:
        task = co(gen, 1, b=2)
        assert isinstance(task, asyncio.Task)
        log.append("co returned")
        return await task

    assert run(main()) == 3
    assert log == ["co returned", "started"]


def test_co_accepts_shim_and_async_def_functions(run: Any) -> None:
    async def native(x: int) -> int:
        return x + 1

    async def main() -> list[int]:
        return [await co(double_after_a_turn, 2), await co(native, 2)]

    assert run(main()) == [4, 3]


def test_decorated_function_is_a_coroutine_function() -> None:
    def gen(a: int, b: int = 2) -> Generator[Any, Any, int]:
        """Doc."""
        yield
        return a + b

    shim = coroutine(gen)
    assert inspect.iscoroutinefunction(shim)
    assert (shim.__name__, shim.__qualname__, shim.__doc__) == (
        gen.__name__,
        gen.__qualname__,
        "Doc.",
    )
    assert str(inspect.signature(shim)) == str(inspect.signature(gen))
    assert inspect.isgeneratorfunction(gen)  # the caller's function is left alone
    coro = shim(1)
    assert inspect.iscoroutine(coro) and asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == 3


def test_decorated_methods_get_self(run: Any) -> None:
    class Counter:
        def __init__(self) -> None:
            self.count = 0

        @coroutine
        def bump(self, by: int) -> Generator[Any, Any, int]:
            yield
            self.count += by
            return self.count

    counter = Counter()
    assert run(counter.bump(5)) == 5


def test_plain_function_result_is_returned_or_awaited(run: Any) -> None:
    @coroutine  # type: ignore[arg-type]
    def plain() -> int:  # @asyncio.coroutine accepted these, so we do
        return 1

    @coroutine
    def returns_awaitable() -> Any:
        return asyncio.sleep(0, 2)

    @coroutine
    def main() -> Generator[Any, Any, list[Any]]:
        return [(yield plain()), (yield from returns_awaitable())]

    assert run(main()) == [1, 2]


def test_async_def_is_returned_unchanged_and_async_generator_refused() -> None:
    async def native() -> None:
        pass

    async def agen() -> Any:
        yield

    assert coroutine(native) is native
    with pytest.raises(TypeError, match="async generator"):
        coroutine(agen)
    with pytest.raises(TypeError, match="needs a generator function, not 42"):
        coroutine(42)  # type: ignore[call-overload]


def test_closing_the_coroutine_closes_the_generator(run: Any) -> None:
    log: list[str] = []

    async def main() -> None:
        coro = wait_forever(log, "shim")
        coro.send(None)  # runs up to its first yield: waits on a future
        coro.close()

    run(main())
    assert log == ["shim waits", "shim finally"]


def test_closing_the_coroutine_during_a_list_cancels_the_children(run: Any) -> None:
    log: list[str] = []

    @coroutine
    def shim() -> Generator[Any, Any, None]:
        try:
            yield [wait_forever(log, "a"), wait_forever(log, "b")]
        finally:
            log.append("shim finally")

    async def main() -> list[str]:
        coro = shim()
        coro.send(None)  # starts the children, then waits for them
        await asyncio.sleep(0)
        coro.close()
        await asyncio.sleep(0)
        return list(log)  # before the runner cancels what is left

    assert run(main()) == ["a waits", "b waits", "shim finally", "a finally", "b finally"]


def test_types_coroutine_generator_becomes_a_real_coroutine(run: Any) -> None:
    @types.coroutine
    def raw() -> Generator[Any, Any, str]:
        yield  # the Task protocol: a bare yield, or a future from `yield from`
        return (yield from asyncio.sleep(0, "raw"))

    shim = coroutine(raw)

    async def main() -> str:
        coro = shim()
        assert inspect.iscoroutine(coro)
        return await asyncio.get_running_loop().create_task(coro)

    assert run(main()) == "raw"


def test_eager_task_factory_is_supported(run: Any) -> None:
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    if run.loop_name == "uvloop":
        pytest.skip("uvloop's create_task does not take eager_task_factory's eager_start")
    log: list[str] = []

    async def failing_now() -> None:
        log.append("fails eagerly")
        raise ValueError("eager")

    @coroutine
    def main() -> Generator[Any, Any, Any]:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
        values = yield [double_after_a_turn(1), asyncio.sleep(0, 5)]
        try:
            yield [failing_now(), wait_forever(log, "never started")]
        except ValueError:
            log.append("caught")
        return values

    assert run(main()) == [2, 5]
    assert log == ["fails eagerly", "caught"]


# --- phaseloop: the shim's wake-ups are the loop's own ------------------------------


@pytest.mark.skipif(phaseloop_new_event_loop is None, reason=PHASELOOP_MISSING)
@pytest.mark.parametrize(
    ("wakeups", "expected"),
    [
        (
            "microtask",
            ["resumed with value", "list done", "immediate", "after bare yield"],
        ),
        (
            "immediate",
            ["immediate", "resumed with value", "list done", "after bare yield"],
        ),
    ],
)
def test_on_phaseloop_wakeups_follow_the_loops_classification(wakeups: str, expected: list[str]) -> None:
    from phaseloop import node

    log: list[str] = []

    async def resolved_by_microtask(value: str) -> Any:
        fut = future()
        node.queue_microtask(fut.set_result, value)
        return await fut

    @coroutine
    def main() -> Generator[Any, Any, None]:
        node.set_immediate(log.append, "immediate")
        fut = future()
        node.queue_microtask(fut.set_result, "value")
        log.append(f"resumed with {(yield fut)}")
        yield [resolved_by_microtask("a"), resolved_by_microtask("b")]
        log.append("list done")
        yield
        log.append("after bare yield")

    with asyncio.Runner(loop_factory=lambda: phaseloop_new_event_loop(wakeups=wakeups)) as runner:
        runner.run(main())
    assert log == expected


def test_failures_and_cancellations_leave_no_reference_cycles(run: Any) -> None:
    # Exceptions hold tracebacks, tracebacks hold frames: a frame of ours that kept the
    # exception in a local would make every failure wait for the cycle collector.
    @coroutine
    def swallow_failures() -> Generator[Any, Any, None]:
        with pytest.raises(ValueError):
            yield fail_after_a_turn("plain")
        with pytest.raises(ValueError):
            yield [fail_after_a_turn("listed"), asyncio.sleep(3600)]
        with pytest.raises(TypeError):
            yield [asyncio.sleep(0), 42]
        for _ in range(2):
            task = co(wait_forever, [], "forever")
            yield
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                yield task
        task = co(lambda: (yield [asyncio.sleep(3600)]))
        yield
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            yield task

    async def main() -> list[str]:
        await swallow_failures()  # warm up: first-use caches are not garbage
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            await swallow_failures()
            gc.collect()
            ours = [
                f"{obj.f_code.co_filename}:{obj.f_code.co_name}"
                for obj in gc.garbage
                if isinstance(obj, types.FrameType)
                and Path(obj.f_code.co_filename).name in ("shim.py", "test_shim.py")
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        return ours

    assert run(main()) == []


# --- the public name, the legacy example, the types ---------------------------------


def test_phaseloop_exports_the_shim() -> None:
    import phaseloop

    assert (phaseloop.coroutine, phaseloop.co) == (coroutine, co)  # type: ignore[attr-defined]


@pytest.mark.timeout(60)
def test_legacy_example_runs_after_changing_its_import() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "legacy_coroutine.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [
        "banner: legacy echo",
        "echo: HELLO WORLD",
        "countdown: 3 2 1",
        "slow() timed out",
        "done",
    ]


TYPED_USE = """
from collections.abc import Generator
from typing import Any
from phaseloop.shim import co, coroutine

@coroutine
def fetch(n: int) -> Generator[Any, Any, str]:
    yield
    return str(n)

async def main() -> None:
    reveal_type(fetch)
    reveal_type(await fetch(1))
    reveal_type(co(fetch, 1))
    await fetch("not an int")
"""


@pytest.mark.timeout(120)
def test_type_hints_make_awaiting_a_shim_typed(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = tmp_path / "typed_use.py"
    source.write_text(TYPED_USE)
    stdout, _, _ = api.run(
        [
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports=silent",
            str(source),
        ]
    )
    # mypy and typeshed versions spell "builtins.int"/"int", "_asyncio.Task"/"asyncio.tasks.Task"
    lines = [
        line.split(": ", 1)[1].replace("builtins.", "").replace("_asyncio.Task", "asyncio.tasks.Task")
        for line in stdout.splitlines()
        if ": note: " in line or ": error: " in line
    ]
    assert lines == [
        'note: Revealed type is "def (n: int) -> typing.Coroutine[Any, Any, str]"',
        'note: Revealed type is "str"',
        'note: Revealed type is "asyncio.tasks.Task[str]"',
        'error: Argument 1 to "fetch" has incompatible type "str"; expected "int"  [arg-type]',
    ]
