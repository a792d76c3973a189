"""``pytest --loop=...`` (phaseloop/pytest_plugin.py), run through pytester."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

HAS_ASYNCIO_PLUGIN = importlib.util.find_spec("pytest_asyncio") is not None
HAS_ANYIO = importlib.util.find_spec("anyio") is not None
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
ALL_LOOPS = ["phaseloop", "asyncio", "uvloop"] if HAS_UVLOOP else ["phaseloop", "asyncio"]


def _entry_point_installed() -> bool:
    return any(
        ep.value == "phaseloop.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11")
    )


# Where phaseloop is installed (pip install -e .), pytest loads the plugin by itself.
PLUGIN_ARGS = [] if _entry_point_installed() else ["-p", "phaseloop.pytest_plugin"]

# Each test records the loop it ran on; the outer test reads the records back.
RECORDER = """
import asyncio, json, os

def record(kind):
    loop = asyncio.get_running_loop()
    with open(os.environ["LOOP_RECORD"], "a") as f:
        f.write(json.dumps([kind, type(loop).__module__.split(".")[0]]) + "\\n")
"""


def _records(path: object) -> list[tuple[str, str]]:
    import json
    from pathlib import Path

    lines = Path(str(path)).read_text().splitlines()
    return sorted(tuple(json.loads(line)) for line in lines)  # type: ignore[misc]


@pytest.fixture
def record_file(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> object:
    path = pytester.path / "records.jsonl"
    monkeypatch.setenv("LOOP_RECORD", str(path))
    pytester.makepyfile(recorder=RECORDER)
    if HAS_ASYNCIO_PLUGIN:
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return path


def _loop_module(name: str) -> str:
    return {"asyncio": "asyncio", "phaseloop": "phaseloop", "uvloop": "uvloop"}[name]


@pytest.mark.skipif(not HAS_ASYNCIO_PLUGIN, reason="pytest-asyncio is not installed")
def test_pytest_asyncio_tests_run_once_per_loop_with_loop_all(
    pytester: pytest.Pytester, record_file: object
) -> None:
    pytester.makepyfile(
        test_sample=textwrap.dedent(
            """
            import asyncio
            import pytest
            from recorder import record

            @pytest.mark.asyncio
            async def test_sleep_and_gather():
                await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0.001))
                record("pytest-asyncio")

            def test_sync_is_not_multiplied():
                pass
            """
        )
    )
    result = pytester.runpytest(*PLUGIN_ARGS, "--loop=all", "-v")
    result.assert_outcomes(passed=len(ALL_LOOPS) + 1)
    for name in ALL_LOOPS:
        result.stdout.fnmatch_lines([f"*test_sleep_and_gather?{name}?*PASSED*"])
    assert _records(record_file) == sorted(("pytest-asyncio", _loop_module(n)) for n in ALL_LOOPS)


@pytest.mark.skipif(not HAS_ANYIO, reason="anyio is not installed")
def test_anyio_tests_run_once_per_loop_with_loop_all(pytester: pytest.Pytester, record_file: object) -> None:
    pytester.makepyfile(
        test_sample=textwrap.dedent(
            """
            import anyio
            import pytest
            from recorder import record

            pytestmark = pytest.mark.anyio

            async def test_task_group():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(anyio.sleep, 0.001)
                record("anyio")
            """
        )
    )
    result = pytester.runpytest(*PLUGIN_ARGS, "-p", "no:asyncio", "--loop=all", "-v")
    result.assert_outcomes(passed=len(ALL_LOOPS))
    assert _records(record_file) == sorted(("anyio", _loop_module(n)) for n in ALL_LOOPS)


@pytest.mark.skipif(not HAS_ANYIO, reason="anyio is not installed")
def test_loop_option_overrides_a_conftest_anyio_backend(
    pytester: pytest.Pytester, record_file: object
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    pytester.makepyfile(
        test_sample="""
        import pytest
        from recorder import record

        @pytest.mark.anyio
        async def test_it():
            record("anyio")
        """
    )
    result = pytester.runpytest(*PLUGIN_ARGS, "-p", "no:asyncio", "--loop=phaseloop")
    result.assert_outcomes(passed=1)
    assert _records(record_file) == [("anyio", "phaseloop")]


@pytest.mark.skipif(not HAS_ASYNCIO_PLUGIN, reason="pytest-asyncio is not installed")
def test_without_loop_option_pytest_asyncio_keeps_its_default_loop(
    pytester: pytest.Pytester, record_file: object
) -> None:
    pytester.makepyfile(
        test_sample="""
        import pytest
        from recorder import record

        @pytest.mark.asyncio
        async def test_it():
            record("pytest-asyncio")
        """
    )
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=1)
    assert _records(record_file) == [("pytest-asyncio", "asyncio")]


def test_loop_option_is_harmless_without_async_plugins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample="def test_plain():\n    pass\n")
    result = pytester.runpytest(*PLUGIN_ARGS, "-p", "no:asyncio", "-p", "no:anyio", "--loop=all")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["event loops (--loop): phaseloop, asyncio*"])


def test_unknown_loop_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample="def test_plain():\n    pass\n")
    result = pytester.runpytest(*PLUGIN_ARGS, "--loop=nosuchloop")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown loop 'nosuchloop'*"])


def test_plugin_imports_no_loop_or_async_framework() -> None:
    # asyncio itself comes in with the phaseloop package (phaseloop/__init__.py), not the plugin.
    code = (
        "import sys; import phaseloop.pytest_plugin; "
        "heavy = {'uvloop', 'anyio', 'trio', 'pytest_asyncio'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
