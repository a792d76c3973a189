"""Run other projects' test suites with a chosen event loop (docs/conformance_outside.md).

    python compat/outside.py SUITE --loop MODULE:FACTORY [-k EXPR] [--timeout S] [-- PYTEST_ARGS]
    python compat/outside.py all --loop phaseloop:new_event_loop
    python compat/outside.py --ci                  # a small slice of every suite, phaseloop only

SUITE is ``anyio``, ``trio-guest``, ``pytest-asyncio``, ``uvloop`` or ``all``. The loop is
named the same way for every loop (``asyncio:new_event_loop``, ``uvloop:new_event_loop``,
``phaseloop:new_event_loop``). The suites are the ones of the packages installed in the
running interpreter: sdists of the same versions are fetched with pip into a temporary
directory and run there (trio ships its tests inside the package); nothing is copied into
this repository. Each suite ends with one line ``passed=N failed=N errors=N skipped=N``
(xfailed counts as skipped, xpassed as passed). On phaseloop, failures listed in
``EXPLAINED`` (Node-ordering differences and known bugs, each with its reason) are marked
and do not make the exit status non-zero; any other failure or error does. ``--install``
pip-installs what the suites need first.

How the loop reaches each suite:
- anyio: its ``anyio_backend`` fixture is redefined (appended to the extracted
  ``tests/conftest.py``) as ``("asyncio", {"debug": True, "loop_factory": factory})``; trio
  backend items are deselected.
- trio-guest: ``trio/_core/_tests/test_guest_mode.py`` makes its host loop with
  ``asyncio.new_event_loop()``: an event loop policy returning the factory's loops is set.
- pytest-asyncio: the same policy (its runners call ``asyncio.new_event_loop()`` through
  the policy when no loop factory is configured), for its own tests and their pytester runs.
- uvloop: only ``tb.AIOTestCase`` classes run; ``AIOTestCase.new_loop``/``new_policy`` are
  patched to the factory (the class itself is not copied).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASELOOP = "phaseloop:new_event_loop"

# Extra test-time packages each suite imports (pip names).
NEEDS: dict[str, list[str]] = {
    "anyio": ["anyio", "trio", "trustme", "pytest-mock", "psutil", "truststore", "hypothesis"],
    "trio-guest": ["trio", "pytest-timeout"],
    "pytest-asyncio": ["pytest-asyncio", "hypothesis"],
    "uvloop": ["uvloop", "aiohttp", "pyOpenSSL", "psutil"],
}

# --ci: a slice per suite chosen to touch tasks, cancellation, sockets, threads and guest mode.
CI_SLICES: dict[str, list[str]] = {
    "anyio": ["tests/test_taskgroups.py", "tests/test_synchronization.py", "tests/streams/test_memory.py"],
    "trio-guest": [],
    "pytest-asyncio": [
        "tests/test_simple.py",
        "tests/async_fixtures/test_async_fixtures.py",
        "tests/async_fixtures/test_nested.py",
        "tests/async_fixtures/test_shared_module_fixture.py",
    ],
    "uvloop": ["tests/test_base.py", "tests/test_context.py"],
}

# phaseloop-only failures, by suite and test (parametrization stripped), with the reason
# (docs/conformance_outside.md). On phaseloop they are marked in the report and do not
# make the exit status non-zero. Remove an entry when phaseloop changes so that it passes.
R25 = "R25: connection_lost runs in the close phase, after the check phase where sleep(0) resumes"
R19 = "R19/R20: the wake-up is a microtask and runs before the call_soon (immediate) the test relies on"
R16 = "R16: sleep(0) resumes in the check phase, after poll, where the loopback connect completed"
EXPLAINED: dict[str, dict[str, str]] = {
    "anyio": {
        **{
            f"tests/test_sockets.py::{cls}::{test}": R25
            for cls in ("TestTCPStream", "TestUDPSocket", "TestConnectedUDPSocket")
            for test in (
                "test_aclose_in_cancelled_scope_raises_cancelled_exc",
                "test_concurrent_aclose_forcefully_closes_socket",
            )
        },
        "tests/test_sockets.py::TestTCPStream::test_connect_tcp_with_tls_cert_check_fail": R25
        + "; the test then blocks the loop thread in thread.join()",
        "tests/test_taskgroups.py::TestUncancel::test_native_cancel_after_scope_cancel_same_cycle": R19,
        "tests/test_taskgroups.py::TestUncancel::test_native_cancel_after_scope_cancel_same_cycle_group": R19,
        "tests/test_taskgroups.py::TestUncancel::test_native_cancel_after_scope_cancel_task_cancelled": R19,
        "tests/test_taskgroups.py::TestRefcycles::test_exception_refcycles_parent_task": (
            "BUG: _run_check keeps the immediate it ran alive while that callback's microtasks drain"
        ),
    },
    "uvloop": {
        "tests/test_base.py::TestBaseAIO::test_call_soon_threadsafe_safety": (
            "BUG, fixed in 3cc8b68: lost wake-up (_wake_pending cleared before the self-pipe was drained)"
        ),
        "tests/test_base.py::TestBaseAIO::test_shutdown_asyncgens_01": R19
        + " (the aclose() tasks start before the generators' sleep(0) resumes)",
        "tests/test_base.py::TestBaseAIO::test_thread_name_prefix_in_default_executor": (
            "phaseloop's thread pool serves run_in_executor(None); its threads are not named asyncio_N"
        ),
        "tests/test_tcp.py::Test_AIO_TCP::test_create_connection_5": R16,
        "tests/test_tcp.py::Test_AIO_TCP::test_create_connection_sock_cancel_detaches": R16,
        "tests/test_tcp.py::Test_AIO_TCP::test_create_connection_sock_cancel_fd_leak": R16,
        "tests/test_unix.py::Test_AIO_Unix::test_create_unix_connection_sock_cancel_detaches": R16,
        "tests/test_unix.py::Test_AIO_Unix::test_create_unix_connection_sock_cancel_fd_leak": R16,
        "tests/test_udp.py::Test_AIO_UDP::test_socketpair": (
            "the suite takes a loop not from module asyncio.* for uvloop and tests uvloop-only sendto()"
        ),
    },
}


def explanation(suite: str, nodeid: str) -> str | None:
    return EXPLAINED.get(suite, {}).get(nodeid.split("[")[0])


# Written next to the suite; loaded with -p. It installs the loop and counts outcomes.
PLUGIN = '''
import asyncio
import importlib
import json
import os
import signal

import pytest

SPEC = os.environ["PHASELOOP_OUTSIDE_LOOP"]
SUITE = os.environ["PHASELOOP_OUTSIDE_SUITE"]
_STOCK_POLICY = asyncio.DefaultEventLoopPolicy()


def resolve(spec):
    module, _, name = spec.partition(":")
    if (module, name) == ("asyncio", "new_event_loop"):
        # The stock loop, whatever policy the run installs afterwards.
        return _STOCK_POLICY.new_event_loop
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


_factory = resolve(SPEC)
_made = {}


def FACTORY():
    loop = _factory()
    name = type(loop).__module__ + "." + type(loop).__qualname__
    _made[name] = _made.get(name, 0) + 1
    return loop


class OutsidePolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio.new_event_loop() -> a loop from the factory under test."""

    def new_event_loop(self):
        return FACTORY()


def pytest_configure(config):
    # Started from a background job (or nohup), the process ignores SIGINT (SIGHUP) and so do
    # its children; restore what an interactive Python has: trio's KI tests and uvloop's
    # signal and subprocess tests need it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if SUITE in ("trio-guest", "pytest-asyncio"):
        asyncio.set_event_loop_policy(OutsidePolicy())
    if SUITE == "uvloop":
        from uvloop import _testbase

        _testbase.AIOTestCase.new_loop = lambda self: FACTORY()
        _testbase.AIOTestCase.new_policy = lambda self: OutsidePolicy()


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        if SUITE == "anyio":
            backend = getattr(getattr(item, "callspec", None), "params", {}).get("anyio_backend")
            name = backend[0] if isinstance(backend, tuple) else backend
            (drop if name not in (None, "asyncio") else keep).append(item)
        elif SUITE == "uvloop":
            from uvloop import _testbase

            cls = getattr(item, "cls", None)
            (keep if cls is not None and issubclass(cls, _testbase.AIOTestCase) else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
_failures = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        if report.passed:
            _counts["passed"] += 1
        elif report.skipped:
            _counts["skipped"] += 1
        else:
            _counts["failed"] += 1
            _failures.append(("failed", report.nodeid, report.longreprtext[-1500:]))
    elif report.skipped and report.when == "setup":
        _counts["skipped"] += 1
    elif report.failed:
        _counts["errors"] += 1
        _failures.append(("error " + report.when, report.nodeid, report.longreprtext[-1500:]))


def pytest_sessionfinish(session, exitstatus):
    # pytester's runs do not load this plugin (it is only on the outer command line).
    path = os.environ["PHASELOOP_OUTSIDE_RESULT"]
    if not os.path.exists(path):
        with open(path, "w") as f:
            json.dump({"counts": _counts, "failures": _failures, "loops": _made}, f)
'''

ANYIO_OVERRIDE = """

# ---- appended by phaseloop compat/outside.py: the loop under test is the only backend ----
import os as _outside_os

import _phaseloop_outside

_outside_param = pytest.param(
    ("asyncio", {"debug": True, "loop_factory": _phaseloop_outside.FACTORY}),
    id="asyncio+" + _outside_os.environ["PHASELOOP_OUTSIDE_LOOP"].partition(":")[0],
)
asyncio_params[:] = [_outside_param]


@pytest.fixture(params=[_outside_param])
def anyio_backend(request):
    return request.param
"""


@dataclass
class Result:
    suite: str
    loop: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[list[str]] = field(default_factory=list)
    loops: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def line(self) -> str:
        c = self.counts
        return (
            f"passed={c.get('passed', 0)} failed={c.get('failed', 0)} "
            f"errors={c.get('errors', 0)} skipped={c.get('skipped', 0)}"
        )


def fetch_sdist(dist: str, dest: Path) -> Path:
    """pip download the sdist of the installed version of ``dist``; returns the extracted tree."""
    version = importlib.metadata.version(dist)
    cache = Path(os.environ.get("PHASELOOP_OUTSIDE_CACHE", Path(tempfile.gettempdir()) / "phaseloop-outside"))
    cache.mkdir(parents=True, exist_ok=True)
    stem = dist.replace("-", "_").lower()
    archives = [p for p in cache.glob("*.tar.gz") if p.name.lower().replace("-", "_").startswith(f"{stem}-")]
    archive = next((p for p in archives if p.name.endswith(f"-{version}.tar.gz")), None)
    if archive is None:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
        # --no-binary for this one only: with ":all:", pip also builds the sdist's build
        # requirements from source to read its metadata (Cython, for uvloop: minutes of CI).
        cmd += ["--no-binary", dist, "--no-deps", "-d", str(cache), f"{dist}=={version}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        archive = next(p for p in cache.glob("*.tar.gz") if p.name.endswith(f"-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return next(p for p in dest.iterdir() if p.is_dir() and p.name.lower().replace("-", "_").startswith(stem))


def prepare(suite: str, work: Path) -> tuple[Path, list[str]]:
    """Lay the suite out under ``work``; return (directory to run in, pytest arguments)."""
    if suite == "anyio":
        tree = fetch_sdist("anyio", work)
        with (tree / "tests" / "conftest.py").open("a") as f:
            f.write(ANYIO_OVERRIDE)
        return tree, ["tests"]
    if suite == "pytest-asyncio":
        tree = fetch_sdist("pytest-asyncio", work)
        return tree, ["tests", "docs"]
    if suite == "uvloop":
        tree = fetch_sdist("uvloop", work)
        # Run against the installed uvloop, not the unbuilt source tree.
        (tree / "uvloop").rename(tree / "uvloop-src")
        (tree / "pytest.ini").write_text("[pytest]\n")
        return tree, ["-p", "no:asyncio", "tests"]
    if suite == "trio-guest":
        importlib.metadata.version("trio")
        (work / "pytest.ini").write_text("[pytest]\nxfail_strict = true\n")
        args = ["-p", "no:asyncio", "-p", "trio._tests.pytest_plugin"]
        return work, [*args, "--pyargs", "trio._core._tests.test_guest_mode"]
    raise SystemExit(f"unknown suite {suite!r}")


def run_suite(
    suite: str, loop: str, *, ci: bool, keyword: str | None, timeout: int, extra: Sequence[str]
) -> Result:
    result = Result(suite, loop)
    for dist in NEEDS[suite][:1]:
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            result.note = f"{dist} is not installed"
            return result
    with tempfile.TemporaryDirectory(prefix=f"outside-{suite}-") as tmp:
        work = Path(tmp)
        plugin_dir = work / "_plugin"
        plugin_dir.mkdir()
        (plugin_dir / "_phaseloop_outside.py").write_text(PLUGIN)
        tree, args = prepare(suite, work)
        if ci and CI_SLICES[suite]:
            args = [a for a in args if not a.startswith(("tests", "docs"))] + CI_SLICES[suite]
        out = work / "result.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env.update(
            PHASELOOP_OUTSIDE_LOOP=loop, PHASELOOP_OUTSIDE_SUITE=suite, PHASELOOP_OUTSIDE_RESULT=str(out)
        )
        env.pop("PYTEST_ADDOPTS", None)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "_phaseloop_outside",
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        cmd += ["-p", "no:xdist", f"--timeout={timeout}", "-o", "console_output_style=classic", *args]
        if keyword:
            cmd += ["-k", keyword]
        cmd += list(extra)
        started = time.monotonic()
        log = work / "pytest.log"
        with log.open("w") as f:
            proc = subprocess.run(cmd, cwd=tree, env=env, stdout=f, stderr=subprocess.STDOUT)
        result.seconds = time.monotonic() - started
        if out.exists():
            data = json.loads(out.read_text())
            result.counts, result.failures, result.loops = data["counts"], data["failures"], data["loops"]
        else:
            result.note = f"pytest exited {proc.returncode} without results:\n" + log.read_text()[-3000:]
        keep = os.environ.get("PHASELOOP_OUTSIDE_LOGS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            tag = f"{suite}-{loop.partition(':')[0]}-py{sys.version_info[0]}{sys.version_info[1]}"
            (Path(keep) / f"{tag}.log").write_text(log.read_text())
            (Path(keep) / f"{tag}.json").write_text(json.dumps(result.__dict__, indent=1))
    return result


def install(suites: Sequence[str]) -> None:
    packages = sorted({p for s in suites for p in NEEDS[s]} | {"pytest", "pytest-timeout"})
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages], check=True
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suite", nargs="?", default="all", choices=[*NEEDS, "all"])
    parser.add_argument("--loop", default=PHASELOOP, help="MODULE:FACTORY (default %(default)s)")
    parser.add_argument("--ci", action="store_true", help="a small slice of every available suite, phaseloop")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    parser.add_argument("--timeout", type=int, default=30, help="per-test timeout, seconds")
    parser.add_argument("--install", action="store_true", help="pip install the suites' test dependencies")
    parser.add_argument("--show-failures", action="store_true", help="print each failure's traceback tail")
    opts = parser.parse_args(argv)
    suites = list(NEEDS) if opts.suite == "all" else [opts.suite]
    if opts.ci:
        opts.loop = PHASELOOP
    if opts.install:
        install(suites)
    total = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    worst = 0
    py = ".".join(map(str, sys.version_info[:2]))
    for suite in suites:
        res = run_suite(suite, opts.loop, ci=opts.ci, keyword=opts.keyword, timeout=opts.timeout, extra=extra)
        if res.note and not res.counts:
            print(f"{suite} [{opts.loop}, Python {py}]: not run: {res.note}", flush=True)
            if "not installed" not in res.note:
                worst = 1
            continue
        on_phaseloop = opts.loop.partition(":")[0] == "phaseloop"
        unexplained = 0
        for kind, nodeid, text in res.failures:
            why = explanation(suite, nodeid) if on_phaseloop else None
            unexplained += why is None
            print(f"  {kind}: {nodeid}" + (f"  -- explained: {why}" if why else ""))
            if opts.show_failures:
                print(textwrap.indent(text, "      "))
        made = ", ".join(f"{n} x{c}" for n, c in res.loops.items()) or "none"
        print(f"{suite} [{opts.loop}, Python {py}, {res.seconds:.1f}s, loops made: {made}]", flush=True)
        print(res.line(), flush=True)
        for key in total:
            total[key] += res.counts.get(key, 0)
        if unexplained:
            worst = 1
    if len(suites) > 1:
        print(" ".join(f"{k}={v}" for k, v in total.items()))
    return worst


if __name__ == "__main__":
    sys.exit(main())
