"""How often httpx's connection pool retries a request, by client loop.

    python compat/httpx_pool.py                                  # stock, phaseloop, phaseloop immediate
    python compat/httpx_pool.py --requests 400 --gate 20         # a semaphore of 20 around each request
    python compat/httpx_pool.py --loop phaseloop:new_event_loop?wakeups=immediate

Gathers ``--requests`` POSTs at once on an ``httpx.AsyncClient`` limited to
``--connections`` connections, against a plain asyncio HTTP/1.1 server in a subprocess
(1 ms per answer), and counts the passes of httpcore's pool
(``_assign_requests_to_connections``) and the ``ConnectionNotAvailable`` retries by
wrapping those methods. A loop is ``MODULE:FACTORY``, with ``?key=value&...`` for factory
options. docs/performance.md ("httpx's connection pool") explains the figures.
Needs httpx (phaseloop[compat]).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # phaseloop from this checkout when it is not installed
DEFAULT_LOOPS = [
    "asyncio:new_event_loop",
    "phaseloop:new_event_loop",
    "phaseloop:new_event_loop?wakeups=immediate",
]

SERVER = """
import asyncio, sys


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            await asyncio.sleep(0.001)
            writer.write(
                b"HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n" % len(body) + body
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""


def loop_factory(spec: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """``MODULE:FACTORY?key=value&...`` -> a factory taking no arguments."""
    target, _, query = spec.partition("?")
    module, _, name = target.partition(":")
    factory = getattr(importlib.import_module(module), name or "new_event_loop")
    options = dict(item.split("=", 1) for item in query.split("&") if item)
    return lambda: factory(**options)  # type: ignore[no-any-return]


@contextmanager
def counting() -> Iterator[collections.Counter[str]]:
    """Count the pool's passes and the connections' refusals while the block runs."""
    from httpcore._async import connection_pool, http11
    from httpcore._exceptions import ConnectionNotAvailable

    counts: collections.Counter[str] = collections.Counter()
    pool_class = connection_pool.AsyncConnectionPool
    connection_class = http11.AsyncHTTP11Connection
    assign = pool_class._assign_requests_to_connections
    handle = connection_class.handle_async_request

    def counted_assign(self: Any) -> Any:
        counts["passes"] += 1
        return assign(self)

    async def counted_handle(self: Any, request: Any) -> Any:
        try:
            return await handle(self, request)
        except ConnectionNotAvailable:
            counts["ConnectionNotAvailable"] += 1
            raise

    pool_class._assign_requests_to_connections = counted_assign  # type: ignore[method-assign]
    connection_class.handle_async_request = counted_handle  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        pool_class._assign_requests_to_connections = assign  # type: ignore[method-assign]
        connection_class.handle_async_request = handle  # type: ignore[method-assign]


async def post_all(port: int, requests: int, connections: int, gate: int) -> list[bytes]:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    semaphore = asyncio.Semaphore(gate) if gate else None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:

        async def one(i: int) -> bytes:
            if semaphore is None:
                return (await client.post(f"/{i}", content=f"body-{i}")).content
            async with semaphore:
                return (await client.post(f"/{i}", content=f"body-{i}")).content

        return await asyncio.gather(*(one(i) for i in range(requests)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--loop", action="append", help="MODULE:FACTORY[?key=value&...] (repeatable)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--gate", type=int, default=0, help="a semaphore of this size around each request")
    args = parser.parse_args()
    import httpx  # noqa: F401  # imported before the first loop's clock starts

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        wrong = 0
        for spec in args.loop or DEFAULT_LOOPS:
            with counting() as counts:
                wall, cpu = time.perf_counter(), time.process_time()
                with asyncio.Runner(loop_factory=loop_factory(spec)) as runner:
                    answers = runner.run(post_all(port, args.requests, args.connections, args.gate))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            wrong += sum(answer != f"body-{i}".encode() for i, answer in enumerate(answers))
            print(
                f"{spec}: {args.requests} requests, {wall:.2f} s wall, {cpu:.2f} s CPU, "
                f"{counts['passes']} passes, {counts['ConnectionNotAvailable']} ConnectionNotAvailable"
            )
        return 1 if wrong else 0
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
