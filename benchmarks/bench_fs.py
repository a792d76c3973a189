"""Many small files at once: ``phaseloop.fs`` against ``asyncio.to_thread`` and aiofiles.

    python benchmarks/bench_fs.py [--quick] [--runs N] [--files N] [--dir PATH]

Each round reads ``--files`` files of 4 KiB, all at once (one ``asyncio.gather``), then
writes as many, with each contender on a fresh loop; the contenders take turns within
a round (in a rotated order), so a disturbance on the machine hits them all. The table
gives the median over the rounds of files per second, and the ratio to
``asyncio.to_thread`` on the stock loop (above 1 is faster).

- ``phaseloop.fs`` on phaseloop: ``read_bytes`` / ``write_bytes``, one pool job per file;
- ``phaseloop.fs.open`` on phaseloop: open, read or write, close: three jobs per file;
- ``phaseloop.fs`` on asyncio: the same calls through ``run_in_executor(None, ...)``;
- ``to_thread`` on asyncio and on phaseloop: ``asyncio.to_thread(path.read_bytes)``;
- aiofiles on asyncio and on uvloop: ``async with aiofiles.open(...)``, then read or write.

The files live in a fresh temporary directory (``--dir`` chooses where) and are
read from the page cache, so this measures the cost of the round trips, not the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

try:
    import phaseloop
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import phaseloop

from phaseloop import fs

try:
    import uvloop
except ImportError:
    uvloop = None  # type: ignore[assignment]

try:
    import aiofiles  # type: ignore[import-untyped]
except ImportError:
    aiofiles = None

SIZE = 4096
NewLoop = Callable[[], asyncio.AbstractEventLoop]
Read = Callable[[str], Coroutine[Any, Any, bytes]]
Write = Callable[[str, bytes], Coroutine[Any, Any, object]]


async def fs_read(path: str) -> bytes:
    return await fs.read_bytes(path)


async def fs_write(path: str, data: bytes) -> int:
    return await fs.write_bytes(path, data)


async def fs_open_read(path: str) -> bytes:
    async with fs.open(path, "rb") as f:
        return await f.read()


async def fs_open_write(path: str, data: bytes) -> int:
    async with fs.open(path, "wb") as f:
        return await f.write(data)


async def thread_read(path: str) -> bytes:
    return await asyncio.to_thread(Path(path).read_bytes)


async def thread_write(path: str, data: bytes) -> int:
    return await asyncio.to_thread(Path(path).write_bytes, data)


async def aiofiles_read(path: str) -> bytes:
    async with aiofiles.open(path, "rb") as f:
        return await f.read()  # type: ignore[no-any-return]


async def aiofiles_write(path: str, data: bytes) -> int:
    async with aiofiles.open(path, "wb") as f:
        return await f.write(data)  # type: ignore[no-any-return]


def contenders() -> list[tuple[str, NewLoop, Read, Write]]:
    found: list[tuple[str, NewLoop, Read, Write]] = [
        ("phaseloop.fs      phaseloop", phaseloop.new_event_loop, fs_read, fs_write),
        ("phaseloop.fs.open phaseloop", phaseloop.new_event_loop, fs_open_read, fs_open_write),
        ("phaseloop.fs      asyncio", asyncio.new_event_loop, fs_read, fs_write),
        ("to_thread         asyncio", asyncio.new_event_loop, thread_read, thread_write),
        ("to_thread         phaseloop", phaseloop.new_event_loop, thread_read, thread_write),
    ]
    if aiofiles is not None:
        found.append(("aiofiles          asyncio", asyncio.new_event_loop, aiofiles_read, aiofiles_write))
        if uvloop is not None:
            found.append(("aiofiles          uvloop", uvloop.new_event_loop, aiofiles_read, aiofiles_write))
    return found


BASELINE = "to_thread         asyncio"


async def one_round(read: Read, write: Write, sources: list[str], targets: list[str]) -> tuple[float, float]:
    """Seconds to read every source, then to write every target, each batch all at once."""
    await read(sources[0])  # start the pool's threads outside the timing
    data = os.urandom(SIZE)
    t0 = time.perf_counter()
    results = await asyncio.gather(*[read(path) for path in sources])
    t1 = time.perf_counter()
    await asyncio.gather(*[write(path, data) for path in targets])
    t2 = time.perf_counter()
    assert all(len(r) == SIZE for r in results)
    return t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 files, 3 rounds")
    parser.add_argument("--runs", type=int, help="rounds (default 9, or 3 with --quick)")
    parser.add_argument("--files", type=int, help="files read and files written per round (default 2000)")
    parser.add_argument("--dir", help="where to make the temporary directory")
    options = parser.parse_args()
    files = options.files or (200 if options.quick else 2000)
    runs = options.runs or (3 if options.quick else 9)

    root = Path(tempfile.mkdtemp(prefix="bench_fs_", dir=options.dir))
    try:
        sources = []
        for n in range(files):
            path = root / f"in{n}"
            path.write_bytes(os.urandom(SIZE))
            sources.append(str(path))
        targets = [str(root / f"out{n}") for n in range(files)]

        table = contenders()
        reads: dict[str, list[float]] = {name: [] for name, *_ in table}
        writes: dict[str, list[float]] = {name: [] for name, *_ in table}
        for round_no in range(runs):
            shift = round_no % len(table)
            for name, new_loop, read, write in table[shift:] + table[:shift]:
                with asyncio.Runner(loop_factory=new_loop) as runner:
                    read_s, write_s = runner.run(one_round(read, write, sources, targets))
                reads[name].append(files / read_s)
                writes[name].append(files / write_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    probe = phaseloop.new_event_loop()
    pool_size = probe.threadpool_size
    probe.close()
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.machine()},")
    print(f"{os.cpu_count()} CPUs, phaseloop pool {pool_size} threads")
    print(f"{sys.executable} {' '.join(sys.argv)}")
    print(f"{files} files of {SIZE} B read, then {files} written, all at once; median of {runs} rounds")
    print()
    base_read = statistics.median(reads[BASELINE])
    base_write = statistics.median(writes[BASELINE])
    print(f"{'API':<17} {'loop':<10} {'read files/s':>13} {'ratio':>6} {'write files/s':>14} {'ratio':>6}")
    for name, *_ in table:
        api, loop_name = name.split()
        r = statistics.median(reads[name])
        w = statistics.median(writes[name])
        read_col = f"{r:>13,.0f} {r / base_read:>5.2f}x"
        write_col = f"{w:>14,.0f} {w / base_write:>5.2f}x"
        print(f"{api:<17} {loop_name:<10} {read_col} {write_col}")


if __name__ == "__main__":
    main()
