"""phaseloop.fs: every function, its errors, cancellation, ordering, and the pool behind it (issue 3)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import logging
import os
import shutil
import socket
import stat as stat_module
import threading
import traceback
from asyncio import selector_events
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, cast

import pytest
import uvloop

import phaseloop
from phaseloop import fs, node
from phaseloop.threadpool import Job, ThreadPool

pytestmark = pytest.mark.timeout(20)

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "phaseloop": phaseloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine to completion on a fresh loop of each kind: phaseloop.fs works on all."""

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(coro)

    return run


def run_phaseloop(main: Callable[[phaseloop.EventLoop], Awaitable[Any]], **options: Any) -> Any:
    loop = phaseloop.new_event_loop(**options)
    try:
        return loop.run_until_complete(main(loop))  # type: ignore[arg-type]
    finally:
        loop.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """file.txt, dir/child.txt, empty/, link -> file.txt."""
    (tmp_path / "file.txt").write_bytes(b"data\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "child.txt").write_bytes(b"child")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file.txt")
    return tmp_path


async def hold_worker(loop: phaseloop.EventLoop) -> tuple[threading.Event, asyncio.Future[None]]:
    """Occupy one pool worker until the returned event is set (with a pool of 1: the pool)."""
    release = threading.Event()
    started: asyncio.Future[None] = loop.create_future()

    def hold() -> None:
        loop.call_soon_threadsafe(started.set_result, None)
        release.wait(10)

    held = loop.queue_work(hold)
    await started
    return release, held


# ---------------------------------------------------------------------------
# Whole files
# ---------------------------------------------------------------------------


def test_read_bytes_and_write_bytes(run: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    payload = os.urandom(300_000)

    async def main() -> list[object]:
        written = await fs.write_bytes(path, payload)
        whole = await fs.read_bytes(path)
        replaced = await fs.write_bytes(str(path), bytearray(b"short"))  # any bytes-like, any path type
        return [written, whole == payload, replaced, await fs.read_bytes(os.fsencode(path))]

    assert run(main()) == [300_000, True, 5, b"short"]


def test_read_text_and_write_text_honour_encoding_errors_newline(
    run: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "f.txt"

    async def main() -> list[object]:
        return [
            await fs.write_text(path, "é\nx\n", encoding="latin-1", newline="\r\n"),
            path.read_bytes(),
            await fs.read_text(path, encoding="latin-1"),  # universal newlines
            await fs.read_text(path, encoding="latin-1", newline=""),  # untranslated
            await fs.read_text(path, encoding="ascii", errors="replace"),
        ]

    assert run(main()) == [4, b"\xe9\r\nx\r\n", "é\nx\n", "é\r\nx\r\n", "\ufffd\nx\n"]


def test_write_helpers_reject_wrong_data_before_touching_the_file(
    run: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "untouched"

    async def main() -> None:
        with pytest.raises(TypeError, match="data must be str, not bytes"):
            await fs.write_text(path, b"bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await fs.write_bytes(path, "text")  # type: ignore[arg-type]

    run(main())
    assert not path.exists()


def test_copyfile(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> object:
        return await fs.copyfile(tree / "file.txt", tree / "copy.txt")

    assert run(main()) == tree / "copy.txt"
    assert (tree / "copy.txt").read_bytes() == b"data\n"


# ---------------------------------------------------------------------------
# Open files
# ---------------------------------------------------------------------------


def test_open_binary_read_write_seek_tell_truncate_flush(run: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "f.bin"

    async def main() -> list[object]:
        async with fs.open(path, "w+b") as f:
            steps: list[object] = [await f.write(b"hello world"), await f.flush(), path.read_bytes()]
            steps += [await f.tell(), await f.seek(6), await f.read(), await f.seek(0)]
            steps += [await f.read(5), await f.read1(1), await f.truncate(5), await f.seek(0, os.SEEK_END)]
            steps += [f.readable(), f.writable(), f.closed, f.mode, f.name == str(path)]
        steps.append(f.closed)
        return steps

    assert run(main()) == [
        11, None, b"hello world", 11, 6, b"world", 0, b"hello", b" ", 5, 5,
        True, True, False, "rb+", True, True,
    ]  # fmt: skip
    assert path.read_bytes() == b"hello"


def test_open_text_honours_encoding_errors_newline(run: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"caf\xe9\r\nline2\rend")

    async def main() -> list[object]:
        async with fs.open(path, encoding="latin-1") as f:
            translated = await f.read()
        async with fs.open(path, encoding="latin-1", newline="") as f:
            raw_lines = await f.readlines()
        async with fs.open(path, encoding="utf-8", errors="replace") as f:
            replaced = await f.readline()
        async with fs.open(tmp_path / "out.txt", "w", encoding="utf-16", newline="\r\n") as f:
            await f.write("a\n")
        return [translated, raw_lines, replaced, (tmp_path / "out.txt").read_bytes()]

    assert run(main()) == [
        "café\nline2\nend",
        ["café\r\n", "line2\r", "end"],
        "caf\ufffd\n",
        "a\r\n".encode("utf-16"),
    ]


def test_readline_readlines_writelines_and_async_for(run: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"

    async def main() -> list[object]:
        async with fs.open(path, "w") as f:
            await f.writelines(line for line in ["one\n", "two\n", "three\n", "four"])
        async with fs.open(path) as f:
            first = await f.readline()
            second = await f.readline(2)
            rest = [line async for line in f]
        async with fs.open(path, "rb") as f:
            lines = await f.readlines()
        return [first, second, rest, lines]

    assert run(main()) == [
        "one\n",
        "tw",
        ["o\n", "three\n", "four"],
        [b"one\n", b"two\n", b"three\n", b"four"],
    ]


def test_await_open_gives_a_file_you_close_yourself(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> list[object]:
        f = await fs.open(tree / "file.txt", "rb")
        fd = f.fileno()
        out: list[object] = [await f.read(), f.closed, f.wrapped.closed]
        await f.close()
        await f.close()  # twice is fine, as with a file
        out += [f.closed]
        async with f:  # an AsyncFile is an async context manager too
            pass
        with pytest.raises(OSError) as info:
            os.fstat(fd)
        out.append(info.value.errno)
        return out

    assert run(main()) == [b"data\n", False, False, True, errno.EBADF]


def test_open_accepts_a_descriptor_and_an_opener(run: Callable[..., Any], tree: Path) -> None:
    opened: list[str] = []

    def opener(path: str, flags: int) -> int:
        opened.append(os.path.basename(path))
        return os.open(path, flags)

    async def main() -> list[bytes]:
        fd = os.open(tree / "file.txt", os.O_RDONLY)
        async with fs.open(fd, "rb") as f:
            by_fd = await f.read()
        async with fs.open(tree / "file.txt", "rb", opener=opener) as f:
            by_opener = await f.read()
        return [by_fd, by_opener]

    assert run(main()) == [b"data\n", b"data\n"]
    assert opened == ["file.txt"]


# ---------------------------------------------------------------------------
# Paths and directories
# ---------------------------------------------------------------------------


def test_stat_lstat_exists_readlink_realpath(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> list[object]:
        return [
            (await fs.stat(tree / "link")).st_size,
            stat_module.S_ISLNK((await fs.lstat(tree / "link")).st_mode),
            stat_module.S_ISLNK((await fs.stat(tree / "link", follow_symlinks=False)).st_mode),
            await fs.exists(tree / "file.txt"),
            await fs.exists(tree / "missing"),
            await fs.exists("bad\0path"),
            await fs.readlink(tree / "link"),
            await fs.readlink(os.fsencode(tree / "link")),
            await fs.realpath(tree / "link"),
            await fs.realpath(str(tree / "missing")),
        ]

    target = str(tree / "file.txt")
    assert run(main()) == [
        5, True, True, True, False, False, target, os.fsencode(target), os.path.realpath(target),
        str(tree / "missing"),
    ]  # fmt: skip


def test_stat_of_a_descriptor_and_with_dir_fd(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> list[int]:
        fd = os.open(tree / "file.txt", os.O_RDONLY)
        dir_fd = os.open(tree, os.O_RDONLY)
        try:
            return [(await fs.stat(fd)).st_size, (await fs.stat("file.txt", dir_fd=dir_fd)).st_size]
        finally:
            os.close(fd)
            os.close(dir_fd)

    assert run(main()) == [5, 5]


def test_listdir_and_scandir(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> list[object]:
        entries = await fs.scandir(tree)
        return [
            sorted(await fs.listdir(tree)),
            sorted(await fs.listdir(os.fsencode(tree / "dir"))),
            sorted((e.name, e.is_dir(), e.is_symlink()) for e in entries),
            [e.name for e in await fs.scandir(os.fsencode(tree / "dir"))],
        ]

    assert run(main()) == [
        ["dir", "empty", "file.txt", "link"],
        [b"child.txt"],
        [("dir", True, False), ("empty", True, False), ("file.txt", False, False), ("link", False, True)],
        [b"child.txt"],
    ]


def test_mkdir_makedirs_remove_rmdir(run: Callable[..., Any], tmp_path: Path) -> None:
    async def main() -> None:
        await fs.mkdir(tmp_path / "a", 0o700)
        await fs.makedirs(tmp_path / "b" / "c" / "d")
        await fs.makedirs(tmp_path / "b" / "c", exist_ok=True)
        await fs.write_bytes(tmp_path / "b" / "c" / "d" / "f", b"")
        await fs.remove(tmp_path / "b" / "c" / "d" / "f")
        await fs.rmdir(tmp_path / "b" / "c" / "d")

    run(main())
    assert stat_module.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700 & ~_umask()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "c"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_rename_replace_symlink(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> None:
        await fs.rename(tree / "file.txt", tree / "renamed.txt")
        await fs.write_bytes(tree / "other", b"other")
        await fs.replace(tree / "other", tree / "renamed.txt")
        await fs.symlink("renamed.txt", tree / "new-link")
        await fs.symlink(tree / "dir", tree / "dir-link", target_is_directory=True)

    run(main())
    assert (tree / "renamed.txt").read_bytes() == b"other"
    assert not (tree / "file.txt").exists() and not (tree / "other").exists()
    assert os.readlink(tree / "new-link") == "renamed.txt"
    assert (tree / "dir-link" / "child.txt").exists()


def test_utime_and_chmod(run: Callable[..., Any], tree: Path) -> None:
    path = tree / "file.txt"

    async def main() -> None:
        await fs.utime(path, (1_000_000, 2_000_000))
        await fs.chmod(path, 0o600)

    run(main())
    info = path.stat()
    assert (info.st_atime, info.st_mtime) == (1_000_000, 2_000_000)
    assert stat_module.S_IMODE(info.st_mode) == 0o600

    async def by_ns() -> None:
        await fs.utime(path, ns=(5, 3_000_000_000_000_000_007))
        await fs.utime(tree / "link", (7, 7), follow_symlinks=False)

    run(by_ns())
    assert path.stat().st_mtime_ns == 3_000_000_000_000_000_007
    assert os.lstat(tree / "link").st_mtime == 7


def test_functions_need_a_running_loop(tree: Path) -> None:
    coro = fs.stat(tree)
    with pytest.raises(RuntimeError, match="no running event loop"):
        coro.send(None)
    opening = fs.open(tree / "file.txt").__await__()
    with pytest.raises(RuntimeError, match="no running event loop"):
        opening.send(None)


# ---------------------------------------------------------------------------
# Errors: those of the blocking call, and the loop keeps running
# ---------------------------------------------------------------------------

Case = tuple[Callable[[Path], Awaitable[object]], Callable[[Path], object]]


async def _read_closed(path: Path) -> None:
    f = await fs.open(path / "file.txt", "rb")
    await f.close()
    await f.read()


def _read_closed_blocking(path: Path) -> None:
    f = open(path / "file.txt", "rb")  # noqa: SIM115
    f.close()
    f.read()


async def _read_write_only(path: Path) -> None:
    async with fs.open(path / "file.txt", "a") as f:
        await f.read()


def _read_write_only_blocking(path: Path) -> None:
    with open(path / "file.txt", "a") as f:
        f.read()


ERROR_CASES: dict[str, Case] = {
    "read_bytes missing": (lambda t: fs.read_bytes(t / "missing"), lambda t: (t / "missing").read_bytes()),
    "read_bytes directory": (lambda t: fs.read_bytes(t / "dir"), lambda t: (t / "dir").read_bytes()),
    "read_text missing": (lambda t: fs.read_text(t / "missing"), lambda t: (t / "missing").read_text()),
    "read_text undecodable": (
        lambda t: fs.read_text(t / "file.txt", encoding="utf-16"),
        lambda t: (t / "file.txt").read_text(encoding="utf-16"),
    ),
    "read_text unknown encoding": (
        lambda t: fs.read_text(t / "file.txt", encoding="nope"),
        lambda t: (t / "file.txt").read_text(encoding="nope"),
    ),
    "write_bytes directory": (
        lambda t: fs.write_bytes(t / "dir", b"x"),
        lambda t: (t / "dir").write_bytes(b"x"),
    ),
    "write_bytes no parent": (
        lambda t: fs.write_bytes(t / "no" / "f", b"x"),
        lambda t: (t / "no" / "f").write_bytes(b"x"),
    ),
    "write_text directory": (lambda t: fs.write_text(t / "dir", "x"), lambda t: (t / "dir").write_text("x")),
    "write_text unencodable": (
        lambda t: fs.write_text(t / "new", "é", encoding="ascii"),
        lambda t: (t / "new").write_text("é", encoding="ascii"),
    ),
    "open missing": (lambda t: fs.open(t / "missing"), lambda t: open(t / "missing")),  # noqa: SIM115
    "open directory for writing": (lambda t: fs.open(t / "dir", "w"), lambda t: open(t / "dir", "w")),  # noqa: SIM115
    "open exclusive existing": (
        lambda t: fs.open(t / "file.txt", "x"),
        lambda t: open(t / "file.txt", "x"),  # noqa: SIM115
    ),
    "open bad mode": (lambda t: fs.open(t / "file.txt", "rz"), lambda t: open(t / "file.txt", "rz")),  # noqa: SIM115
    "read closed file": (_read_closed, _read_closed_blocking),
    "read write-only file": (_read_write_only, _read_write_only_blocking),
    "stat missing": (lambda t: fs.stat(t / "missing"), lambda t: os.stat(t / "missing")),
    "stat bad descriptor": (lambda t: fs.stat(987_654), lambda t: os.stat(987_654)),
    "lstat missing": (lambda t: fs.lstat(t / "missing"), lambda t: os.lstat(t / "missing")),
    "listdir a file": (lambda t: fs.listdir(t / "file.txt"), lambda t: os.listdir(t / "file.txt")),
    "listdir missing": (lambda t: fs.listdir(t / "missing"), lambda t: os.listdir(t / "missing")),
    "scandir a file": (lambda t: fs.scandir(t / "file.txt"), lambda t: os.scandir(t / "file.txt")),
    "mkdir existing": (lambda t: fs.mkdir(t / "dir"), lambda t: os.mkdir(t / "dir")),
    "mkdir no parent": (lambda t: fs.mkdir(t / "no" / "d"), lambda t: os.mkdir(t / "no" / "d")),
    "makedirs existing": (lambda t: fs.makedirs(t / "dir"), lambda t: os.makedirs(t / "dir")),
    "makedirs through a file": (
        lambda t: fs.makedirs(t / "file.txt" / "d"),
        lambda t: os.makedirs(t / "file.txt" / "d"),
    ),
    "remove directory": (lambda t: fs.remove(t / "dir"), lambda t: os.remove(t / "dir")),
    "remove missing": (lambda t: fs.remove(t / "missing"), lambda t: os.remove(t / "missing")),
    "rmdir not empty": (lambda t: fs.rmdir(t / "dir"), lambda t: os.rmdir(t / "dir")),
    "rmdir a file": (lambda t: fs.rmdir(t / "file.txt"), lambda t: os.rmdir(t / "file.txt")),
    "rename missing": (
        lambda t: fs.rename(t / "missing", t / "x"),
        lambda t: os.rename(t / "missing", t / "x"),
    ),
    "rename dir onto file": (
        lambda t: fs.rename(t / "empty", t / "file.txt"),
        lambda t: os.rename(t / "empty", t / "file.txt"),
    ),
    "replace file onto dir": (
        lambda t: fs.replace(t / "file.txt", t / "dir"),
        lambda t: os.replace(t / "file.txt", t / "dir"),
    ),
    "copyfile missing": (
        lambda t: fs.copyfile(t / "missing", t / "x"),
        lambda t: shutil.copyfile(t / "missing", t / "x"),
    ),
    "copyfile onto itself": (
        lambda t: fs.copyfile(t / "file.txt", t / "link"),
        lambda t: shutil.copyfile(t / "file.txt", t / "link"),
    ),
    "copyfile onto a directory": (
        lambda t: fs.copyfile(t / "file.txt", t / "dir"),
        lambda t: shutil.copyfile(t / "file.txt", t / "dir"),
    ),
    "readlink not a link": (lambda t: fs.readlink(t / "file.txt"), lambda t: os.readlink(t / "file.txt")),
    "symlink existing": (lambda t: fs.symlink("x", t / "link"), lambda t: os.symlink("x", t / "link")),
    "realpath strict missing": (
        lambda t: fs.realpath(t / "missing", strict=True),
        lambda t: os.path.realpath(t / "missing", strict=True),
    ),
    "utime missing": (lambda t: fs.utime(t / "missing"), lambda t: os.utime(t / "missing")),
    "utime times and ns": (
        lambda t: fs.utime(t / "file.txt", (1, 1), ns=(1, 1)),
        lambda t: os.utime(t / "file.txt", (1, 1), ns=(1, 1)),
    ),
    "chmod missing": (lambda t: fs.chmod(t / "missing", 0o600), lambda t: os.chmod(t / "missing", 0o600)),
}


def assert_same_error(got: BaseException, want: BaseException) -> None:
    assert type(got) is type(want)
    assert got.args == want.args
    if isinstance(want, OSError):
        assert isinstance(got, OSError)
        assert (got.errno, got.strerror, got.filename, got.filename2) == (
            want.errno,
            want.strerror,
            want.filename,
            want.filename2,
        )


def blocking_error(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the blocking call did not raise")


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_those_of_the_blocking_call(run: Callable[..., Any], tree: Path, case: str) -> None:
    call, blocking = ERROR_CASES[case]

    async def main() -> tuple[BaseException, bool]:
        with pytest.raises(Exception) as info:
            await call(tree)
        return info.value, await fs.exists(tree / "file.txt")  # and the loop goes on

    got, still_running = run(main())
    assert still_running
    assert_same_error(got, blocking_error(lambda: blocking(tree)))


@pytest.fixture
def unwritable(tmp_path: Path) -> Path:
    """A path the blocking ``open(path, 'wb')`` refuses with PermissionError, whoever we are."""
    candidates = [tmp_path / "locked" / "f", Path("/proc/1/mem"), Path("/sys/kernel/phaseloop-test")]
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    for path in candidates:
        try:
            open(path, "wb").close()  # noqa: SIM115
        except PermissionError:
            return path
        except OSError:
            continue
    pytest.skip("no path here refuses writing with PermissionError")


def test_permission_error_is_that_of_the_blocking_call(run: Callable[..., Any], unwritable: Path) -> None:
    async def main() -> BaseException:
        with pytest.raises(PermissionError) as info:
            await fs.write_bytes(unwritable, b"x")
        return info.value

    assert_same_error(run(main()), blocking_error(lambda: unwritable.write_bytes(b"x")))


def test_worker_traceback_reaches_the_awaiter(run: Callable[..., Any], tree: Path) -> None:
    async def main() -> list[str]:
        with pytest.raises(FileNotFoundError) as info:
            await fs.read_bytes(tree / "missing")
        return [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]

    frames = run(main())
    assert frames[0] == "main" and "_read_bytes" in frames  # the awaiter's frame down to the worker's


# ---------------------------------------------------------------------------
# Cancellation: nothing left open, nothing written unseen
# ---------------------------------------------------------------------------


def test_cancelled_before_the_job_starts_it_never_runs(tmp_path: Path) -> None:
    async def main(loop: phaseloop.EventLoop) -> None:
        release, held = await hold_worker(loop)
        tasks = [
            asyncio.ensure_future(fs.write_bytes(tmp_path / "a", b"x")),
            asyncio.ensure_future(fs.write_text(tmp_path / "b", "x")),
            asyncio.ensure_future(fs.mkdir(tmp_path / "c")),
            asyncio.ensure_future(_open_for_writing(tmp_path / "d")),
        ]
        await asyncio.sleep(0)  # one iteration: every task has queued its job
        for task in tasks:
            task.cancel()
        release.set()
        await held
        await loop.queue_work(int)  # a pool of 1 is FIFO: every job before this one is over

    run_phaseloop(main, threadpool_size=1)
    assert os.listdir(tmp_path) == []


async def _open_for_writing(path: Path) -> None:
    async with fs.open(path, "w"):
        pass


@pytest.mark.parametrize("form", ["await", "async with"])
def test_open_cancelled_after_the_job_started_closes_the_file(tmp_path: Path, form: str) -> None:
    fds: list[int] = []

    async def main(loop: phaseloop.EventLoop) -> None:
        started: asyncio.Future[None] = loop.create_future()
        release = threading.Event()

        def opener(path: str, flags: int) -> int:
            loop.call_soon_threadsafe(started.set_result, None)
            release.wait(10)
            fds.append(os.open(path, flags, 0o666))
            return fds[-1]

        async def open_it() -> None:
            if form == "await":
                await fs.open(tmp_path / "f", "w", opener=opener)
            else:
                async with fs.open(tmp_path / "f", "w", opener=opener):
                    raise AssertionError("never entered")

        task = asyncio.ensure_future(open_it())
        await started
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await loop.queue_work(int)  # FIFO: the open job has completed and been dealt with

    run_phaseloop(main, threadpool_size=1)
    assert len(fds) == 1 and (tmp_path / "f").exists()
    with pytest.raises(OSError) as info:
        os.fstat(fds[0])
    assert info.value.errno == errno.EBADF


def test_failed_write_after_cancel_goes_to_the_exception_handler(tmp_path: Path) -> None:
    """A FIFO gates the job: open(2) blocks until a reader comes, the write fails when it leaves."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reported: list[dict[str, Any]] = []

    async def main(loop: phaseloop.EventLoop) -> None:
        loop.set_exception_handler(lambda _, context: reported.append(context))
        opened: asyncio.Future[None] = loop.create_future()
        leave = threading.Event()

        def reader() -> None:
            fd = os.open(fifo, os.O_RDONLY)  # returns once the job has opened the FIFO
            loop.call_soon_threadsafe(opened.set_result, None)
            leave.wait(10)
            os.close(fd)  # the writer, blocked on a full pipe, gets EPIPE

        thread = threading.Thread(target=reader)
        thread.start()
        task = asyncio.ensure_future(fs.write_bytes(fifo, b"x" * 1_000_000))
        await opened
        task.cancel()
        leave.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await loop.queue_work(int)  # FIFO: the write job has completed and been dealt with
        thread.join()

    run_phaseloop(main, threadpool_size=1)
    assert len(reported) == 1
    assert "awaiter was cancelled" in reported[0]["message"]
    assert isinstance(reported[0]["exception"], BrokenPipeError)


class RecordingFile:
    """A stand-in file object: logs each call; a call can be held, and can fail."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.log: list[str] = []
        self.running = 0
        self.overlapped = False
        self.started: dict[str, asyncio.Future[None]] = {}
        self.held: dict[str, threading.Event] = {}
        self.fail: set[str] = set()
        self.closed = False

    def hold(self, name: str) -> tuple[asyncio.Future[None], threading.Event]:
        self.started[name] = self.loop.create_future()
        self.held[name] = threading.Event()
        return self.started[name], self.held[name]

    def _call(self, name: str) -> None:
        self.running += 1
        self.overlapped |= self.running > 1
        if name in self.started:
            self.loop.call_soon_threadsafe(self.started[name].set_result, None)
            self.held[name].wait(10)
        self.log.append(name)
        self.running -= 1
        if name in self.fail:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(self, data: bytes) -> int:
        self._call(data.decode())
        return len(data)

    def read(self, size: int = -1) -> bytes:
        self._call("read")
        return b""

    def flush(self) -> None:
        self._call("flush")

    def close(self) -> None:
        self._call("close")
        self.closed = True


def recording(loop: asyncio.AbstractEventLoop) -> tuple[RecordingFile, fs.AsyncFile[bytes]]:
    raw = RecordingFile(loop)
    return raw, fs.AsyncFile(cast(Any, raw))


def test_calls_on_one_file_run_one_at_a_time_in_call_order(tmp_path: Path) -> None:
    async def main(loop: phaseloop.EventLoop) -> list[object]:
        raw, f = recording(loop)
        started, release = raw.hold("a")
        gathered = asyncio.gather(*(f.write(s.encode()) for s in "abcdef"), f.read(), f.flush())
        await started
        release.set()
        await gathered
        async with fs.open(tmp_path / "f", "wb") as real:
            await asyncio.gather(*(real.write(s.encode()) for s in "abcdef"))
        return [raw.log, raw.overlapped, (tmp_path / "f").read_bytes()]

    assert run_phaseloop(main) == [["a", "b", "c", "d", "e", "f", "read", "flush"], False, b"abcdef"]


def test_call_cancelled_while_waiting_its_turn_never_runs() -> None:
    async def main(loop: phaseloop.EventLoop) -> list[str]:
        raw, f = recording(loop)
        started, release = raw.hold("a")
        first = asyncio.ensure_future(f.write(b"a"))
        second = asyncio.ensure_future(f.write(b"b"))
        await started
        second.cancel()
        release.set()
        await first
        await f.flush()
        assert second.cancelled()
        return raw.log

    assert run_phaseloop(main) == ["a", "flush"]


@pytest.mark.parametrize("when", ["waiting its turn", "running"])
def test_close_runs_even_if_its_awaiter_is_cancelled(when: str) -> None:
    async def main(loop: phaseloop.EventLoop) -> list[object]:
        raw, f = recording(loop)
        started, release = raw.hold("a" if when == "waiting its turn" else "close")
        if when == "waiting its turn":
            asyncio.ensure_future(f.write(b"a"))
            closing = asyncio.ensure_future(f.close())
        else:
            closing = asyncio.ensure_future(f.close())
        await started
        closing.cancel()
        release.set()
        await f.flush()  # queued behind the close
        return [raw.log, raw.closed, closing.cancelled()]

    expected = ["a", "close", "flush"] if when == "waiting its turn" else ["close", "flush"]
    assert run_phaseloop(main) == [expected, True, True]


def test_failed_file_write_after_cancel_goes_to_the_exception_handler() -> None:
    reported: list[dict[str, Any]] = []

    async def main(loop: phaseloop.EventLoop) -> None:
        loop.set_exception_handler(lambda _, context: reported.append(context))
        raw, f = recording(loop)
        raw.fail.add("a")
        started, release = raw.hold("a")
        writing = asyncio.ensure_future(f.write(b"a"))
        await started
        writing.cancel()
        release.set()
        await f.flush()

    run_phaseloop(main)
    assert [type(c["exception"]) for c in reported] == [OSError]
    assert reported[0]["exception"].errno == errno.ENOSPC


# ---------------------------------------------------------------------------
# Ordering on phaseloop (SEMANTICS §7, R28; Node scenarios 03 and 32)
# ---------------------------------------------------------------------------


def test_completion_is_observed_in_the_poll_phase(tree: Path) -> None:
    async def main(loop: phaseloop.EventLoop) -> list[str | None]:
        phases = [loop.phase]
        await fs.stat(tree / "file.txt")
        phases.append(loop.phase)
        async with fs.open(tree / "file.txt", "rb") as f:
            phases.append(loop.phase)
            await f.read()
            phases.append(loop.phase)
        await fs.write_bytes(tree / "new", b"x")  # a guarded job: one more hop, same drain
        phases.append(loop.phase)
        return phases

    assert run_phaseloop(main) == [None, "poll", "poll", "poll", "poll"]


def test_queues_after_an_fs_completion(tree: Path) -> None:
    """The code after ``await fs.stat()`` runs as a promise reaction (a microtask) in the poll
    phase, as after Node's ``await fs.promises.stat()``: a microtask it queues runs before a
    tick it queues (R19), then the check phase of the same iteration, then the 0 ms timer (R29)."""
    out: list[str] = []

    async def main(loop: phaseloop.EventLoop) -> None:
        await fs.stat(tree / "file.txt")
        out.append(f"continuation@{loop.phase}")
        node.set_timeout(lambda: out.append(f"timeout0@{loop.phase}"), 0)
        node.set_immediate(lambda: out.append(f"immediate@{loop.phase}"))
        node.queue_microtask(lambda: out.append(f"microtask@{loop.phase}"))
        node.next_tick(lambda: out.append(f"tick@{loop.phase}"))

    loop = phaseloop.new_event_loop()
    try:
        loop.create_task(main(loop))
        loop.run_while_alive()
    finally:
        loop.close()
    assert out == ["continuation@poll", "microtask@poll", "tick@poll", "immediate@check", "timeout0@timers"]


def test_queues_inside_an_fs_callback(tree: Path) -> None:
    """An fs completion handed to a callback, as ``fs.readFile(path, cb)`` is in scenario 03: the
    callback is an I/O callback, so its ticks drain before its microtasks, then immediate, timer."""
    out: list[str] = []

    def callback() -> None:
        out.append(f"callback@{loop.phase}")
        node.set_timeout(lambda: out.append("timeout0"), 0)
        node.set_immediate(lambda: out.append("immediate"))
        node.queue_microtask(lambda: out.append("microtask"))
        node.next_tick(lambda: out.append("tick"))

    async def main() -> None:
        data = await fs.read_bytes(tree / "file.txt")
        out.append(f"read {len(data)}")
        loop.call_soon_threadsafe(callback)  # the callback, as libuv's worker would post it

    loop = phaseloop.new_event_loop()
    try:
        loop.create_task(main())
        loop.run_while_alive()
    finally:
        loop.close()
    assert out == ["read 5", "callback@poll", "tick", "microtask", "immediate", "timeout0"]


# ---------------------------------------------------------------------------
# The pool behind it (SEMANTICS §7): what queue_work promises
# ---------------------------------------------------------------------------


def test_pool_of_one_runs_jobs_in_submission_order(tree: Path) -> None:
    out: list[str] = []

    async def main(loop: phaseloop.EventLoop) -> None:
        slow = loop.queue_work(hashlib.pbkdf2_hmac, "sha256", b"pw", b"salt", 50_000, 32)
        slow.add_done_callback(lambda _: out.append("slow"))
        await asyncio.gather(slow, _then(fs.stat(tree), out, "stat"))

    run_phaseloop(main, threadpool_size=1)
    assert out == ["slow", "stat"]


async def _then(awaitable: Awaitable[object], out: list[str], token: str) -> None:
    await awaitable
    out.append(token)


def test_default_pool_runs_jobs_in_parallel(monkeypatch: pytest.MonkeyPatch, tree: Path) -> None:
    monkeypatch.delenv("PHASELOOP_THREADPOOL_SIZE", raising=False)

    async def main(loop: phaseloop.EventLoop) -> list[object]:
        release, held = await hold_worker(loop)
        await fs.stat(tree)  # finishes while the first job still holds its worker
        done_before = held.done()
        release.set()
        await held
        return [loop.threadpool_size, done_before]

    assert run_phaseloop(main) == [4, False]


@pytest.mark.parametrize(("value", "size"), [("0", 1), ("2", 2), ("5000", 1024)])
def test_pool_size_from_the_environment_starts_that_many_threads(
    monkeypatch: pytest.MonkeyPatch, value: str, size: int
) -> None:
    monkeypatch.setenv("PHASELOOP_THREADPOOL_SIZE", value)

    async def main(loop: phaseloop.EventLoop) -> int:
        before = {t for t in threading.enumerate() if t.name.startswith("phaseloop-pool-")}
        await fs.stat(".")
        return len({t for t in threading.enumerate() if t.name.startswith("phaseloop-pool-")} - before)

    assert run_phaseloop(main) == size


def test_completions_of_a_burst_share_one_wakeup_and_one_poll_phase() -> None:
    loop = phaseloop.new_event_loop(threadpool_size=8)
    writes = 0
    posted = 0
    all_posted = threading.Event()
    write_to_self = loop._write_to_self
    post = loop._post

    def counting_write() -> None:
        nonlocal writes
        writes += 1
        write_to_self()

    def counting_post(job: Any) -> None:
        nonlocal posted
        post(job)
        posted += 1
        if posted == 8:
            all_posted.set()

    loop._write_to_self = counting_write  # type: ignore[method-assign]
    loop._post = counting_post  # type: ignore[method-assign]  # before the pool exists: it keeps this one
    seen: list[tuple[int, str | None]] = []
    gate = threading.Event()

    async def main() -> None:
        jobs = [loop.queue_work(gate.wait, 10) for _ in range(8)]
        for job in jobs:
            job.add_done_callback(lambda _: seen.append((loop.iteration, loop.phase)))
        gate.set()
        assert all_posted.wait(10)  # the loop thread blocks here while every worker posts
        await asyncio.gather(*jobs)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert writes == 1
    assert len(seen) == 8 and len(set(seen)) == 1 and seen[0][1] == "poll"


def test_a_post_while_the_loop_drains_its_pipe_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker A posts just as the loop drains the self-pipe (its byte is swallowed), then worker
    B posts after the loop took its batch: B must still wake the loop."""
    loop = phaseloop.new_event_loop()
    out: list[str] = []
    drain = selector_events.BaseSelectorEventLoop._read_from_self  # type: ignore[attr-defined]
    armed = [True]

    def drain_with_a_post(self: Any) -> None:
        if armed and self is loop:
            armed.clear()
            loop.call_soon_threadsafe(out.append, "A")  # worker A, racing the drain
        drain(self)

    def first() -> None:
        out.append("first")
        loop.call_soon_threadsafe(second)  # worker B, after the batch was taken

    def second() -> None:
        out.append("B")
        loop.stop()

    monkeypatch.setattr(selector_events.BaseSelectorEventLoop, "_read_from_self", drain_with_a_post)
    guard = loop.call_later(2.0, loop.stop)  # without the fix, B would wait for ever
    try:
        loop.call_soon_threadsafe(first)
        loop.run_forever()
    finally:
        guard.cancel()
        loop.close()
    assert out == ["first", "A", "B"]


class Lookups:
    """A stand-in for ``socket.getaddrinfo``: each call blocks until released, noting how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.names: list[str] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, host: str, *args: Any) -> list[Any]:
        with self.lock:
            self.names.append(host)
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.release()
        self.release.wait(10)
        with self.lock:
            self.running -= 1
        return [(host, args)]

    def wait_started(self, count: int) -> bool:
        return all(self.started.acquire(timeout=10) for _ in range(count))


@pytest.mark.parametrize(("size", "limit"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (1024, 512)])
def test_name_lookups_may_use_half_the_pool_rounded_up(size: int, limit: int) -> None:
    assert ThreadPool(size, lambda job: None).slow_limit == limit


def test_name_lookups_leave_the_other_half_of_the_pool_to_file_work(
    monkeypatch: pytest.MonkeyPatch, tree: Path
) -> None:
    lookups = Lookups()
    monkeypatch.setattr(socket, "getaddrinfo", lookups)

    async def main(loop: phaseloop.EventLoop) -> list[object]:
        pending = [asyncio.ensure_future(loop.getaddrinfo(f"host{i}", 80)) for i in range(4)]
        # Two lookups start and two wait, though the pool has four threads: this job
        # and the stat below get the other two.
        assert await loop.queue_work(lookups.wait_started, 2)
        size = (await fs.stat(tree / "file.txt")).st_size
        seen = [lookups.running, sum(lookup.done() for lookup in pending), size]
        lookups.release.set()
        results = await asyncio.gather(*pending)
        return [*seen, lookups.most, [result[0][0] for result in results]]

    running, done, size, most, hosts = run_phaseloop(main, threadpool_size=4)
    assert (running, done, size) == (2, 0, 5)
    assert most == 2
    assert hosts == ["host0", "host1", "host2", "host3"]


def test_a_burst_of_lookups_and_jobs_all_complete_and_lookups_keep_to_their_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups = Lookups()
    lookups.release.set()  # each lookup returns at once
    monkeypatch.setattr(socket, "getaddrinfo", lookups)

    async def main(loop: phaseloop.EventLoop) -> list[object]:
        names = [f"host{i}" for i in range(200)]
        found = asyncio.gather(*(loop.getaddrinfo(name, 80) for name in names))
        worked = asyncio.gather(*(loop.queue_work(hashlib.sha256, name.encode()) for name in names))
        results, digests = await asyncio.gather(found, worked)
        return [[result[0][0] for result in results] == names, len(digests), lookups.most]

    ordered, jobs, most = run_phaseloop(main, threadpool_size=3)
    assert ordered and jobs == 200
    assert 1 <= most <= 2


def test_a_pool_of_one_runs_lookups_and_other_jobs_in_submission_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args: ran.append(host))
    monkeypatch.setattr(socket, "getnameinfo", lambda sockaddr, flags: ran.append(sockaddr[0]))

    async def main(loop: phaseloop.EventLoop) -> None:
        release, held = await hold_worker(loop)  # everything below queues behind it

        async def work(name: str) -> None:
            await loop.queue_work(ran.append, name)

        every = asyncio.gather(
            loop.getaddrinfo("lookup1", 80),
            work("work1"),
            loop.getnameinfo(("lookup2", 80)),
            work("work2"),
            loop.getaddrinfo("lookup3", 80),
        )
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(held, every)

    run_phaseloop(main, threadpool_size=1)
    assert ran == ["lookup1", "work1", "lookup2", "work2", "lookup3"]


def test_a_lookup_waiting_for_its_turn_is_cancelled_by_the_pool_s_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups = Lookups()
    monkeypatch.setattr(socket, "getaddrinfo", lookups)

    async def main(loop: phaseloop.EventLoop) -> list[object]:
        first = asyncio.ensure_future(loop.getaddrinfo("first", 80))
        second = asyncio.ensure_future(loop.getaddrinfo("second", 80))
        assert await loop.run_in_executor(None, lookups.wait_started, 1)  # a pool of 2: one lookup at a time
        shutdown = asyncio.ensure_future(loop.shutdown_default_executor())
        await asyncio.sleep(0)
        lookups.release.set()
        await shutdown
        await first
        with pytest.raises(asyncio.CancelledError):
            await second
        return lookups.names

    assert run_phaseloop(main, threadpool_size=2) == ["first"]


def test_lookups_go_to_the_default_executor_the_program_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args: threading.current_thread().name)
    monkeypatch.setattr(socket, "getnameinfo", lambda *args: threading.current_thread().name)

    async def main(loop: phaseloop.EventLoop) -> list[str]:
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as executor:
            loop.set_default_executor(executor)
            return [await loop.getaddrinfo("host", 80), await loop.getnameinfo(("host", 80))]

    assert [name.split("_")[0] for name in run_phaseloop(main)] == ["mine", "mine"]


def test_lookups_run_on_the_pool_and_resolve_on_every_python() -> None:
    async def main(loop: phaseloop.EventLoop) -> list[object]:
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        host, port = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        return [infos[0][4], host, port]

    assert run_phaseloop(main) == [("127.0.0.1", 80), "127.0.0.1", "80"]
    assert run_phaseloop(main, debug=True) == [("127.0.0.1", 80), "127.0.0.1", "80"]


def test_job_a_worker_takes_as_the_pool_shuts_down_is_cancelled() -> None:
    """A job dequeued just before shutdown is skipped; its future is cancelled, not set to None."""
    loop = phaseloop.new_event_loop()
    try:
        future = loop.create_future()
        ran: list[str] = []
        pool = ThreadPool(1, lambda job: None)
        pool.pending = 1
        job = Job(pool, ran.append, ("ran",), future)
        pool.closing = True  # stop() ran between the worker's dequeue and execute()
        job.execute()
        job._run()
        assert future.cancelled() and ran == [] and pool.pending == 0
    finally:
        loop.close()


def test_debug_mode_reports_a_slow_completion_by_its_job(
    caplog: pytest.LogCaptureFixture, tree: Path
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    errors: list[dict[str, Any]] = []

    async def main(loop: phaseloop.EventLoop) -> int:
        loop.set_exception_handler(lambda _, context: errors.append(context))
        loop.slow_callback_duration = 0  # every callback is "slow"
        return (await fs.stat(tree / "file.txt")).st_size

    assert run_phaseloop(main, debug=True) == 5
    assert errors == []
    assert any("thread-pool job" in record.getMessage() for record in caplog.records)
