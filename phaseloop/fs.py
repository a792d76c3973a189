"""Files and directories on the thread pool, under Python's own names (issue 3, SEMANTICS §7).

Each function awaits the blocking call it is named after (``open``, ``os.stat``,
``shutil.copyfile``, ``pathlib.Path.read_bytes``, ...), run in one pool job: on a
phaseloop loop with ``loop.queue_work`` (completions in the poll phase, R28), on any
other asyncio loop with ``loop.run_in_executor(None, ...)``. Results and exceptions are
the blocking call's own, raised at the ``await`` with the worker's traceback.

Cancelling an awaiter before its job has started means the job never runs. A job that
has started cannot be stopped: it runs to the end, a file it opened is closed, and an
error from one that writes goes to the loop's exception handler, since nobody else
will hear of it.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import shutil
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, AnyStr, Final, Generic, Literal, TypeVar, overload

from .loop import EventLoop

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "AsyncFile",
    "chmod",
    "copyfile",
    "exists",
    "listdir",
    "lstat",
    "makedirs",
    "mkdir",
    "open",
    "read_bytes",
    "read_text",
    "readlink",
    "realpath",
    "remove",
    "rename",
    "replace",
    "rmdir",
    "scandir",
    "stat",
    "symlink",
    "utime",
    "write_bytes",
    "write_text",
]

_T = TypeVar("_T")
_PathT = TypeVar("_PathT", bound="_StrOrBytesPath")

_StrOrBytesPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
_FdOrPath = int | _StrOrBytesPath
_OpenerFunc = Callable[[str, int], int]

_TextMode = Literal[
    "r", "w", "a", "x", "r+", "w+", "a+", "x+", "rt", "wt", "at", "xt", "r+t", "w+t", "a+t", "x+t"
]
_BinaryMode = Literal[
    "rb", "wb", "ab", "xb", "r+b", "w+b", "a+b", "x+b", "rb+", "wb+", "ab+", "xb+", "br", "bw", "ba", "bx"
]

# _Call states, changed under its lock: the worker claims a job, or the loop revokes it.
_QUEUED: Final = 0
_STARTED: Final = 1
_REVOKED: Final = 2


def _submit(loop: asyncio.AbstractEventLoop, func: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
    """One job: the loop's own pool on phaseloop, the default executor on any other loop."""
    if isinstance(loop, EventLoop):
        return loop.queue_work(func, *args)
    return loop.run_in_executor(None, func, *args)


def _work(func: Callable[..., _T], *args: Any, **options: Any) -> asyncio.Future[_T]:
    loop = asyncio.get_running_loop()
    if options:
        func = functools.partial(func, **options)
    return _submit(loop, func, *args)


# ---------------------------------------------------------------------------
# Jobs whose awaiter may leave
# ---------------------------------------------------------------------------

_Orphan = Callable[[asyncio.AbstractEventLoop, "asyncio.Future[Any]"], None]


def _forget(loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any]) -> None:
    """A read whose awaiter left: mark its error retrieved, drop the rest."""
    done.exception()


def _close_orphaned(loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any]) -> None:
    """An open whose awaiter left: close the file. It was just opened and holds no data
    to flush, so this is only close(2) and is done here rather than as one more job."""
    if done.exception() is None and done.result() is not None:
        done.result().close()


def _report_orphaned(loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any]) -> None:
    """A write whose awaiter left: its caller can no longer be told of a failure, so the loop is."""
    exc = done.exception()
    if exc is not None:
        loop.call_exception_handler(
            {"message": "phaseloop.fs: a write failed after its awaiter was cancelled", "exception": exc}
        )


class _Call:
    """One pool job for an awaiter that may be cancelled.

    The awaiter waits on ``outcome``, never on the pool's future, so cancelling it
    cannot drop the result of a job that has already started: that result goes to
    ``orphan`` instead. A job not yet started is revoked and never runs, unless it
    is ``must_run`` (a close). ``then`` is called once the job is over, for good.
    """

    __slots__ = (
        "_loop",
        "_func",
        "_args",
        "_lock",
        "_state",
        "_must_run",
        "_orphan",
        "_then",
        "_pooled",
        "outcome",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        orphan: _Orphan,
        *,
        must_run: bool = False,
        then: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._func = func
        self._args = args
        self._lock = threading.Lock()
        self._state = _QUEUED
        self._must_run = must_run
        self._orphan = orphan
        self._then = then
        self._pooled: asyncio.Future[Any] | None = None
        outcome = self.outcome = _Outcome(loop=loop)
        outcome.call = self

    def start(self) -> bool:
        """Hand the job to the pool; False if its awaiter left before (it never runs)."""
        if self._state == _REVOKED:
            return False
        try:
            pooled = self._pooled = _submit(self._loop, self._run)
        except BaseException as exc:  # e.g. the loop or its pool is shut down
            if not self.outcome.done():
                self.outcome.set_exception(exc)
            return False
        pooled.add_done_callback(self._settle)
        return True

    def _run(self) -> Any:
        # Worker side.
        with self._lock:
            if self._state == _REVOKED:
                return None
            self._state = _STARTED
        return self._func(*self._args)

    def abandon(self) -> None:
        """The awaiter got CancelledError: revoke the job, or hand its outcome to ``orphan``."""
        outcome = self.outcome
        if not outcome.done():
            outcome.cancel()
        elif not outcome.cancelled():
            # Settled just as the awaiter was cancelled: nobody will read it now.
            self._orphan(self._loop, outcome)

    def revoke(self) -> None:
        """The awaiter is gone: if no worker has taken the job, it never will."""
        if self._must_run:
            return
        with self._lock:
            if self._state != _QUEUED:
                return  # running: _settle hands what it leaves to orphan
            self._state = _REVOKED
        if self._pooled is not None:
            self._pooled.cancel()  # out of the pool's queue too; _settle passes the turn on

    def _settle(self, pooled: asyncio.Future[Any]) -> None:
        outcome = self.outcome
        if outcome.cancelled():
            if not pooled.cancelled():
                self._orphan(self._loop, pooled)
        elif pooled.cancelled():
            outcome.cancel()
        else:
            exc = pooled.exception()
            if exc is None:
                outcome.set_result(pooled.result())
            else:
                outcome.set_exception(exc)
        del outcome.call  # settled: cancel() is a no-op from now on; this breaks the cycle
        if self._then is not None:
            self._then()


class _Outcome(asyncio.Future[Any]):
    """What a ``_Call``'s awaiter waits on. ``Task.cancel()`` cancels it directly, so the
    job is revoked right then, before any worker can take it, not a callback later."""

    call: _Call

    def cancel(self, msg: Any | None = None) -> bool:
        if not super().cancel(msg):
            return False
        self.call.revoke()
        return True


async def _guarded(orphan: _Orphan, func: Callable[..., _T], *args: Any) -> _T:
    call = _Call(asyncio.get_running_loop(), func, args, orphan)
    call.start()
    try:
        result: _T = await call.outcome
    except asyncio.CancelledError:
        call.abandon()
        raise
    return result


# ---------------------------------------------------------------------------
# Open files
# ---------------------------------------------------------------------------


class AsyncFile(Generic[AnyStr]):
    """A file object whose blocking methods are awaitables, each one pool job.

    Calls on one file run one at a time, in the order they were made, so
    ``asyncio.gather(f.write(a), f.write(b))`` writes ``a`` then ``b``. ``wrapped`` is
    the file object itself, for anything not wrapped here (call it only while no
    operation is pending). Closing runs even if its awaiter is cancelled.
    """

    def __init__(self, file: IO[AnyStr]) -> None:
        self._file: IO[AnyStr] = file
        self._backlog: deque[_Call] = deque()
        self._busy = False

    def __repr__(self) -> str:
        return f"<phaseloop.fs.AsyncFile {self._file!r}>"

    # -- the serial queue of this file ---------------------------------------

    async def _do(self, orphan: _Orphan, func: Callable[..., _T], *args: Any, must_run: bool = False) -> _T:
        call = _Call(asyncio.get_running_loop(), func, args, orphan, must_run=must_run, then=self._next)
        if self._busy:
            self._backlog.append(call)
        else:
            self._busy = True
            if not call.start():
                self._next()
        try:
            result: _T = await call.outcome
        except asyncio.CancelledError:
            call.abandon()
            raise
        return result

    def _next(self) -> None:
        """The job in progress is over: start the next one still wanted."""
        backlog = self._backlog
        while backlog:
            if backlog.popleft().start():
                return
        self._busy = False

    # -- attributes and cheap calls, answered on the loop thread --------------

    @property
    def wrapped(self) -> IO[AnyStr]:
        """The file object that the pool jobs operate on."""
        return self._file

    @property
    def name(self) -> Any:
        """The file's ``name``: the path or file descriptor it was opened with."""
        return self._file.name

    @property
    def mode(self) -> str:
        """The file's ``mode``."""
        return self._file.mode

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self._file.closed

    def fileno(self) -> int:
        """The file descriptor (no job: it is an attribute read)."""
        return self._file.fileno()

    def readable(self) -> bool:
        """``file.readable()``, answered from the mode (no job)."""
        return self._file.readable()

    def writable(self) -> bool:
        """``file.writable()``, answered from the mode (no job)."""
        return self._file.writable()

    # -- the blocking methods --------------------------------------------------

    async def read(self, size: int = -1) -> AnyStr:
        """``file.read(size)``: up to ``size`` characters or bytes, everything when negative."""
        return await self._do(_forget, self._file.read, size)

    async def read1(self, size: int = -1) -> bytes:
        """``file.read1(size)``: at most one raw read (binary buffered files only)."""
        return await self._do(_forget, self._file.read1, size)  # type: ignore[attr-defined]

    async def readline(self, size: int = -1) -> AnyStr:
        """``file.readline(size)``: one line, with its line ending; empty at the end of the file."""
        return await self._do(_forget, self._file.readline, size)

    async def readlines(self, hint: int = -1) -> list[AnyStr]:
        """``file.readlines(hint)``: the remaining lines, in one job."""
        return await self._do(_forget, self._file.readlines, hint)

    async def write(self, data: AnyStr) -> int:
        """``file.write(data)``: how many characters or bytes were written (all, when buffered)."""
        return await self._do(_report_orphaned, self._file.write, data)

    async def writelines(self, lines: Iterable[AnyStr]) -> None:
        """``file.writelines(lines)``, in one job; the iterable is read on the loop thread first."""
        await self._do(_report_orphaned, self._file.writelines, list(lines))

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """``file.seek(offset, whence)``: the new position."""
        return await self._do(_forget, self._file.seek, offset, whence)

    async def tell(self) -> int:
        """``file.tell()``: the current position."""
        return await self._do(_forget, self._file.tell)

    async def truncate(self, size: int | None = None) -> int:
        """``file.truncate(size)``: the new size (the current position when None)."""
        return await self._do(_report_orphaned, self._file.truncate, size)

    async def flush(self) -> None:
        """``file.flush()``: hand buffered data to the operating system."""
        await self._do(_report_orphaned, self._file.flush)

    async def close(self) -> None:
        """``file.close()``: flush and close. It runs even if this awaiter is cancelled."""
        await self._do(_report_orphaned, self._file.close, must_run=True)

    async def __aenter__(self) -> AsyncFile[AnyStr]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncFile[AnyStr]:
        return self

    async def __anext__(self) -> AnyStr:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class _Opener(Generic[AnyStr]):
    """What ``open()`` returns: ``await`` it for the file, or use it as an async context manager."""

    __slots__ = ("_args", "_file")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self._args = args
        self._file: AsyncFile[AnyStr] | None = None

    async def _open(self) -> AsyncFile[AnyStr]:
        file: IO[AnyStr] = await _guarded(_close_orphaned, builtins.open, *self._args)
        return AsyncFile(file)

    def __await__(self) -> Generator[Any, None, AsyncFile[AnyStr]]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncFile[AnyStr]:
        self._file = await self._open()
        return self._file

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            await file.close()


@overload
def open(
    file: _FdOrPath,
    mode: _TextMode = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: _OpenerFunc | None = None,
) -> _Opener[str]: ...
@overload
def open(
    file: _FdOrPath,
    mode: _BinaryMode,
    buffering: int = -1,
    encoding: None = None,
    errors: None = None,
    newline: None = None,
    closefd: bool = True,
    opener: _OpenerFunc | None = None,
) -> _Opener[bytes]: ...
@overload
def open(
    file: _FdOrPath,
    mode: str,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: _OpenerFunc | None = None,
) -> _Opener[Any]: ...
def open(
    file: _FdOrPath,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: _OpenerFunc | None = None,
) -> _Opener[Any]:
    """Built-in ``open()`` in a pool job, giving an ``AsyncFile``.

    ``async with fs.open(path) as f:`` closes the file on the way out;
    ``f = await fs.open(path)`` leaves closing to you. The arguments are ``open()``'s;
    ``opener`` is called on a worker thread. If the awaiter is cancelled after the
    job started, the file is closed as soon as the job completes.
    """
    return _Opener((file, mode, buffering, encoding, errors, newline, closefd, opener))


# ---------------------------------------------------------------------------
# Whole files: one job each
# ---------------------------------------------------------------------------


def _read_bytes(path: _StrOrBytesPath) -> bytes:
    # Unbuffered: readall() sizes its buffer from fstat and reads straight into it.
    with builtins.open(path, "rb", buffering=0) as file:
        return file.readall()


def _read_text(path: _StrOrBytesPath, encoding: str | None, errors: str | None, newline: str | None) -> str:
    with builtins.open(path, encoding=encoding, errors=errors, newline=newline) as file:
        return file.read()


def _write_bytes(path: _StrOrBytesPath, view: memoryview) -> int:
    # A raw write may be short; write the rest rather than return a partial count.
    with builtins.open(path, "wb", buffering=0) as file:
        total = len(view)
        written = file.write(view) or 0
        while written < total:
            written += file.write(view[written:]) or 0
        return total


def _write_text(
    path: _StrOrBytesPath, data: str, encoding: str | None, errors: str | None, newline: str | None
) -> int:
    with builtins.open(path, "w", encoding=encoding, errors=errors, newline=newline) as file:
        return file.write(data)


async def read_bytes(path: _StrOrBytesPath) -> bytes:
    """The whole file as bytes (``pathlib.Path.read_bytes``): open, read and close in one job."""
    return await _work(_read_bytes, path)


async def read_text(
    path: _StrOrBytesPath, encoding: str | None = None, errors: str | None = None, newline: str | None = None
) -> str:
    """The whole file decoded (``pathlib.Path.read_text``), in one job; arguments as ``open()``'s."""
    return await _work(_read_text, path, encoding, errors, newline)


async def write_bytes(path: _StrOrBytesPath, data: Buffer) -> int:
    """Replace the file's contents with ``data``, a bytes-like object (``pathlib.Path.write_bytes``).

    One job; all of ``data`` is written or an exception is raised. Returns its length.
    """
    view = memoryview(data)  # a TypeError here, before the file is touched, as pathlib does
    return await _guarded(_report_orphaned, _write_bytes, path, view)


async def write_text(
    path: _StrOrBytesPath,
    data: str,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> int:
    """Replace the file's contents with ``data`` encoded (``pathlib.Path.write_text``), in one job."""
    if not isinstance(data, str):
        raise TypeError(f"data must be str, not {type(data).__name__}")
    return await _guarded(_report_orphaned, _write_text, path, data, encoding, errors, newline)


async def copyfile(src: _StrOrBytesPath, dst: _PathT, *, follow_symlinks: bool = True) -> _PathT:
    """``shutil.copyfile``, in one job (the kernel copies where it can); returns ``dst``."""
    return await _guarded(
        _report_orphaned, functools.partial(shutil.copyfile, follow_symlinks=follow_symlinks), src, dst
    )


# ---------------------------------------------------------------------------
# Paths and directories: the os function of the same name
# ---------------------------------------------------------------------------


async def stat(path: _FdOrPath, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> os.stat_result:
    """``os.stat``."""
    return await _work(os.stat, path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)


async def lstat(path: _StrOrBytesPath, *, dir_fd: int | None = None) -> os.stat_result:
    """``os.lstat``: like ``stat`` but about a symbolic link itself."""
    return await _work(os.lstat, path, dir_fd=dir_fd)


async def exists(path: _FdOrPath) -> bool:
    """``os.path.exists``: False for a broken link and for any error, as there."""
    return await _work(os.path.exists, path)


@overload
async def listdir(path: str | os.PathLike[str] | int | None = None) -> list[str]: ...
@overload
async def listdir(path: bytes | os.PathLike[bytes]) -> list[bytes]: ...
async def listdir(path: _FdOrPath | None = None) -> list[str] | list[bytes]:
    """``os.listdir``: the names in the directory, in arbitrary order."""
    return await _work(os.listdir, path)


def _scandir(path: Any) -> list[os.DirEntry[Any]]:
    with os.scandir(path) as entries:
        return list(entries)


@overload
async def scandir(path: str | os.PathLike[str] | int | None = None) -> list[os.DirEntry[str]]: ...
@overload
async def scandir(path: bytes | os.PathLike[bytes]) -> list[os.DirEntry[bytes]]: ...
async def scandir(path: _FdOrPath | None = None) -> list[os.DirEntry[Any]]:
    """``os.scandir``, read to the end in one job: a list of ``os.DirEntry``.

    Their ``is_dir()``/``is_file()`` answers usually come with the listing; ``stat()``
    on an entry is a blocking call of its own.
    """
    return await _work(_scandir, path)


async def mkdir(path: _StrOrBytesPath, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
    """``os.mkdir``."""
    await _work(os.mkdir, path, mode, dir_fd=dir_fd)


async def makedirs(name: _StrOrBytesPath, mode: int = 0o777, exist_ok: bool = False) -> None:
    """``os.makedirs``: the directory and any missing parents, in one job."""
    await _work(os.makedirs, name, mode, exist_ok)


async def remove(path: _StrOrBytesPath, *, dir_fd: int | None = None) -> None:
    """``os.remove`` (``os.unlink``)."""
    await _work(os.remove, path, dir_fd=dir_fd)


async def rmdir(path: _StrOrBytesPath, *, dir_fd: int | None = None) -> None:
    """``os.rmdir``: remove an empty directory."""
    await _work(os.rmdir, path, dir_fd=dir_fd)


async def rename(
    src: _StrOrBytesPath,
    dst: _StrOrBytesPath,
    *,
    src_dir_fd: int | None = None,
    dst_dir_fd: int | None = None,
) -> None:
    """``os.rename``."""
    await _work(os.rename, src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


async def replace(
    src: _StrOrBytesPath,
    dst: _StrOrBytesPath,
    *,
    src_dir_fd: int | None = None,
    dst_dir_fd: int | None = None,
) -> None:
    """``os.replace``: rename, replacing ``dst`` if it exists."""
    await _work(os.replace, src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


@overload
async def readlink(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> str: ...
@overload
async def readlink(path: bytes | os.PathLike[bytes], *, dir_fd: int | None = None) -> bytes: ...
async def readlink(path: _StrOrBytesPath, *, dir_fd: int | None = None) -> str | bytes:
    """``os.readlink``: where a symbolic link points."""
    return await _work(os.readlink, path, dir_fd=dir_fd)


async def symlink(
    src: _StrOrBytesPath,
    dst: _StrOrBytesPath,
    target_is_directory: bool = False,
    *,
    dir_fd: int | None = None,
) -> None:
    """``os.symlink``: make ``dst`` a symbolic link to ``src``."""
    await _work(os.symlink, src, dst, target_is_directory, dir_fd=dir_fd)


@overload
async def realpath(path: str | os.PathLike[str], *, strict: bool = False) -> str: ...
@overload
async def realpath(path: bytes | os.PathLike[bytes], *, strict: bool = False) -> bytes: ...
async def realpath(path: _StrOrBytesPath, *, strict: bool = False) -> str | bytes:
    """``os.path.realpath``: the canonical path, symbolic links resolved."""
    return await _work(os.path.realpath, path, strict=strict)


async def utime(
    path: _FdOrPath,
    times: tuple[float, float] | None = None,
    *,
    ns: tuple[int, int] | None = None,
    dir_fd: int | None = None,
    follow_symlinks: bool = True,
) -> None:
    """``os.utime``: set access and modification times (now, ``times`` in s or ``ns`` in ns)."""
    if ns is None:  # os.utime treats ns=None as given
        await _work(os.utime, path, times, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    else:
        await _work(os.utime, path, times, ns=ns, dir_fd=dir_fd, follow_symlinks=follow_symlinks)


async def chmod(
    path: _FdOrPath, mode: int, *, dir_fd: int | None = None, follow_symlinks: bool = True
) -> None:
    """``os.chmod``."""
    await _work(os.chmod, path, mode, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
