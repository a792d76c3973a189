"""Network benchmarks: TCP and UNIX echo (protocols and streams), UDP ping-pong, idle connections.

The server runs on the loop under test; the client is this file run as a separate
process (``python bench_net.py client ...``): plain blocking sockets, the same for
every loop, timing its own round trips (one message in flight at a time). Everything
stays on 127.0.0.1 or a UNIX socket in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_measure import (
    SCATTER_REPS,
    Benchmark,
    Measured,
    NewLoop,
    current_rss_kib,
    per_op_us,
    pin,
    run_on,
    sizes,
)

HOST = "127.0.0.1"
CLIENT_LIMIT = 300.0  # seconds: no run waits longer for its client
IDLE_BATCH = 1000  # connections the idle client opens before waiting for the server's accepts
UDP_BYE = b"bye"


# --- the client (a separate process) ----------------------------------------------------


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _connect(address: str) -> socket.socket:
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
    else:
        sock = socket.create_connection((HOST, int(address)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(CLIENT_LIMIT)
    return sock


def _client_echo(address: str, size: int, n: int) -> float:
    payload = b"x" * size
    buffer = bytearray(size)
    view = memoryview(buffer)
    with _connect(address) as sock:

        def round_trip() -> None:
            sock.sendall(payload)
            got = 0
            while got < size:
                received = sock.recv_into(view[got:])
                if not received:
                    raise ConnectionError("the server closed the connection")
                got += received

        for _ in range(max(1, n // 10)):
            round_trip()
        start = time.perf_counter()
        for _ in range(n):
            round_trip()
        return time.perf_counter() - start


def _client_udp(port: int, size: int, n: int) -> float:
    payload = b"x" * size
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.connect((HOST, port))
        for _ in range(max(1, n // 10)):
            sock.send(payload)
            sock.recv(65536)
        start = time.perf_counter()
        for _ in range(n):
            sock.send(payload)
            sock.recv(65536)
        seconds = time.perf_counter() - start
        sock.send(UDP_BYE)
        return seconds


def _client_idle(port: int, n: int) -> float:
    _raise_fd_limit()
    start = time.perf_counter()
    socks = []
    for i in range(1, n + 1):
        socks.append(socket.create_connection((HOST, port)))
        if i % IDLE_BATCH == 0 and i < n:
            sys.stdin.readline()  # the server has accepted this batch (see _Counter)
    seconds = time.perf_counter() - start
    sys.stdin.readline()  # the server has counted and measured them all
    for sock in socks:
        sock.close()
    return seconds


def client_main(argv: list[str]) -> None:
    """``client echo ADDRESS SIZE N`` | ``client udp PORT SIZE N`` | ``client idle PORT N``; prints JSON."""
    mode, *args = argv
    if mode == "echo":
        seconds = _client_echo(args[0], int(args[1]), int(args[2]))
    elif mode == "udp":
        seconds = _client_udp(int(args[0]), int(args[1]), int(args[2]))
    elif mode == "idle":
        seconds = _client_idle(int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"unknown client mode {mode!r}")
    print(json.dumps({"seconds": seconds}), flush=True)


# --- the server side (on the loop under test) -------------------------------------------


def start_client(*args: object, stdin: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "client", *map(str, args)],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        preexec_fn=_pin_client,
    )


def _pin_client() -> None:
    pin("client")


async def _wait_while_client_runs(proc: subprocess.Popen[bytes], done: asyncio.Future[Any]) -> None:
    """Wait for ``done``; give up if the client exits first (an error) or takes too long."""
    deadline = time.monotonic() + CLIENT_LIMIT
    while not done.done():
        if proc.poll() is not None:
            # It may have finished normally a moment before the server noticed.
            await asyncio.wait_for(asyncio.shield(done), 10)
            return
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("the benchmark client did not finish")
        await asyncio.wait([done], timeout=0.5)


def _client_seconds(proc: subprocess.Popen[bytes]) -> float:
    out, _ = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"the benchmark client failed (exit status {proc.returncode})")
    return float(json.loads(out)["seconds"])


class EchoProtocol(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _echo_server(unix: bool, streams: bool, size: int, n: int) -> tuple[float, tuple[float, float]]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            if not done.done():
                done.set_result(None)

    with tempfile.TemporaryDirectory(prefix="phaseloop-bench-") as tmp:
        path = os.path.join(tmp, "echo.sock")
        server: asyncio.Server
        if unix and streams:
            server = await asyncio.start_unix_server(handle, path)
        elif unix:
            server = await loop.create_unix_server(lambda: EchoProtocol(done), path)
        elif streams:
            server = await asyncio.start_server(handle, HOST, 0)
        else:
            server = await loop.create_server(lambda: EchoProtocol(done), HOST, 0)
        address = path if unix else server.sockets[0].getsockname()[1]
        proc = start_client("echo", address, size, n)
        cpu = _cpu_times()
        try:
            await _wait_while_client_runs(proc, done)
            cpu = _cpu_times(since=cpu)
        finally:
            server.close()
            await server.wait_closed()
        return _client_seconds(proc), cpu


def _cpu_times(since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """This process's (user, system) CPU seconds, minus ``since``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime - since[0], usage.ru_stime - since[1]


def _round_trip_metrics(seconds: float, cpu: tuple[float, float], n: int) -> Measured:
    # User CPU is the loop's own work; system time mostly follows how the kernel
    # schedules client and server on 2 busy cores, so it goes to the JSON only.
    round_trips = n + max(1, n // 10)  # the client's warm-up and measured round trips
    return Measured(
        {
            "us/round trip": per_op_us(seconds, n),
            "server user CPU us/round trip": per_op_us(cpu[0], round_trips),
        },
        {"server system CPU us/round trip": per_op_us(cpu[1], round_trips)},
    )


def _echo(unix: bool, streams: bool, size: int) -> Callable[[NewLoop, int], Measured]:
    def bench(new_loop: NewLoop, n: int) -> Measured:
        seconds, cpu = run_on(new_loop, lambda: _echo_server(unix, streams, size, n))
        measured = _round_trip_metrics(seconds, cpu, n)
        measured.info["message bytes"] = size
        return measured

    return bench


def tcp_protocol_1k(new_loop: NewLoop, n: int) -> Measured:
    """TCP echo, ``asyncio.Protocol`` server, 1 KiB messages."""
    return _echo(unix=False, streams=False, size=1024)(new_loop, n)


def tcp_protocol_64k(new_loop: NewLoop, n: int) -> Measured:
    """TCP echo, ``asyncio.Protocol`` server, 64 KiB messages."""
    return _echo(unix=False, streams=False, size=65536)(new_loop, n)


def tcp_streams_1k(new_loop: NewLoop, n: int) -> Measured:
    """TCP echo, ``asyncio.start_server`` streams (read, write, drain), 1 KiB messages."""
    return _echo(unix=False, streams=True, size=1024)(new_loop, n)


def tcp_streams_64k(new_loop: NewLoop, n: int) -> Measured:
    """TCP echo, streams, 64 KiB messages."""
    return _echo(unix=False, streams=True, size=65536)(new_loop, n)


def unix_protocol_1k(new_loop: NewLoop, n: int) -> Measured:
    """UNIX-socket echo, ``asyncio.Protocol`` server, 1 KiB messages."""
    return _echo(unix=True, streams=False, size=1024)(new_loop, n)


def unix_streams_64k(new_loop: NewLoop, n: int) -> Measured:
    """UNIX-socket echo, streams, 64 KiB messages."""
    return _echo(unix=True, streams=True, size=65536)(new_loop, n)


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data == UDP_BYE:
            if not self.done.done():
                self.done.set_result(None)
        else:
            self.transport.sendto(data, addr)


async def _udp_server(n: int) -> tuple[float, tuple[float, float]]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpEcho(done), local_addr=(HOST, 0))
    proc = start_client("udp", transport.get_extra_info("sockname")[1], 64, n)
    cpu = _cpu_times()
    try:
        await _wait_while_client_runs(proc, done)
        cpu = _cpu_times(since=cpu)
    finally:
        transport.close()
    return _client_seconds(proc), cpu


def udp_ping_pong(new_loop: NewLoop, n: int) -> Measured:
    """UDP: 64-byte datagrams echoed by a ``DatagramProtocol``, one in flight."""
    seconds, cpu = run_on(new_loop, lambda: _udp_server(n))
    return _round_trip_metrics(seconds, cpu, n)


def _with_system_cpu(measured: Measured) -> Measured:
    # In a fresh heap the stock transports' cost is system time (mmap, munmap, page
    # faults): those rows show the server's user + system CPU as well.
    user = measured.metrics["server user CPU us/round trip"]
    system = measured.info["server system CPU us/round trip"]
    measured.metrics["server user+system CPU us/round trip"] = user + system
    return measured


def tcp_protocol_1k_fresh_heap(new_loop: NewLoop, n: int) -> Measured:
    """tcp_protocol_1k, run in a fresh heap: glibc still maps every block of 128 KiB or more."""
    return _with_system_cpu(tcp_protocol_1k(new_loop, n))


def tcp_protocol_64k_fresh_heap(new_loop: NewLoop, n: int) -> Measured:
    """tcp_protocol_64k, run in a fresh heap: glibc still maps every block of 128 KiB or more."""
    return _with_system_cpu(tcp_protocol_64k(new_loop, n))


def udp_ping_pong_fresh_heap(new_loop: NewLoop, n: int) -> Measured:
    """udp_ping_pong, run in a fresh heap: glibc still maps every block of 128 KiB or more."""
    return _with_system_cpu(udp_ping_pong(new_loop, n))


class _Idle(asyncio.Protocol):
    def __init__(self, counter: _Counter) -> None:
        self.counter = counter

    def connection_made(self, transport: Any) -> None:
        self.counter.opened(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.counter.closed()


class _Counter:
    """Counts open connections; ``full`` resolves at ``n``, ``empty`` when back at 0."""

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int) -> None:
        self.n = n
        self.open = 0
        self.full: asyncio.Future[None] = loop.create_future()
        self.empty: asyncio.Future[None] = loop.create_future()
        self.client_stdin: Any = None

    def opened(self, transport: Any) -> None:
        self.open += 1
        if self.open == self.n:
            self.full.set_result(None)
        elif self.open % IDLE_BATCH == 0 and self.client_stdin is not None:
            # Let the client connect the next batch. Without this pacing a client that
            # outran the accepts overflowed the listen queue (somaxconn, 4096 here), and
            # the figure measured the kernel's 1 s SYN retransmission, not the loop.
            self.client_stdin.write(b"next\n")
            self.client_stdin.flush()

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and self.full.done() and not self.empty.done():
            self.empty.set_result(None)


async def _idle_server(n: int) -> tuple[float, float, float, float]:
    loop = asyncio.get_running_loop()
    counter = _Counter(loop, n)
    server = await loop.create_server(lambda: _Idle(counter), HOST, 0, backlog=min(n, 4096))
    rss_before = current_rss_kib()
    start = time.perf_counter()
    cpu = _cpu_times()
    proc = start_client("idle", server.sockets[0].getsockname()[1], n, stdin=True)
    counter.client_stdin = proc.stdin
    try:
        await _wait_while_client_runs(proc, counter.full)
        accepted = time.perf_counter() - start
        user_cpu = _cpu_times(since=cpu)[0]
        rss_after = current_rss_kib()
        assert proc.stdin is not None
        proc.stdin.write(b"close\n")
        proc.stdin.flush()
        await _wait_while_client_runs(proc, counter.empty)
    finally:
        server.close()
        await server.wait_closed()
    _client_seconds(proc)
    return accepted, user_cpu, rss_before, rss_after


def idle_connections(new_loop: NewLoop, n: int) -> Measured:
    """``n`` idle TCP connections held open: server RSS growth per connection, and accept time.

    The accept time is the client's connects as much as the server's accepts; the
    server's user CPU over the same span is the loop's part.
    """
    _raise_fd_limit()
    accepted, user_cpu, before, after = run_on(new_loop, lambda: _idle_server(n))
    return Measured(
        {
            "KiB/conn (RSS delta / n)": (after - before) / n,
            "us/conn (connect+accept)": per_op_us(accepted, n),
            "server user CPU us/conn (accept)": per_op_us(user_cpu, n),
        },
        {"connections": n, "rss before KiB": before, "rss after KiB": after},
    )


BENCHMARKS = [
    Benchmark("tcp_protocol_1k", tcp_protocol_1k, sizes(20_000, 10_000, 200)),
    Benchmark("tcp_protocol_64k", tcp_protocol_64k, sizes(15_000, 2_000, 50), full_reps=SCATTER_REPS),
    Benchmark("tcp_streams_1k", tcp_streams_1k, sizes(20_000, 10_000, 200)),
    Benchmark("tcp_streams_64k", tcp_streams_64k, sizes(15_000, 2_000, 50), full_reps=SCATTER_REPS),
    Benchmark("unix_protocol_1k", unix_protocol_1k, sizes(20_000, 10_000, 200)),
    Benchmark("unix_streams_64k", unix_streams_64k, sizes(15_000, 2_000, 50), full_reps=SCATTER_REPS),
    Benchmark("udp_ping_pong", udp_ping_pong, sizes(20_000, 10_000, 200), full_reps=SCATTER_REPS),
    Benchmark("idle_connections", idle_connections, sizes(10_000, 10_000, 200), full_reps=SCATTER_REPS),
    # The same echoes in a process whose malloc still maps 128 KiB blocks (bench_measure.hold_fresh_heap).
    Benchmark(
        "tcp_protocol_1k_fresh_heap", tcp_protocol_1k_fresh_heap, sizes(20_000, 10_000, 200), fresh_heap=True
    ),
    Benchmark(
        "tcp_protocol_64k_fresh_heap",
        tcp_protocol_64k_fresh_heap,
        sizes(15_000, 2_000, 50),
        full_reps=SCATTER_REPS,
        fresh_heap=True,
    ),
    Benchmark(
        "udp_ping_pong_fresh_heap", udp_ping_pong_fresh_heap, sizes(20_000, 10_000, 200), fresh_heap=True
    ),
]


if __name__ == "__main__":
    if sys.argv[1:2] != ["client"]:
        raise SystemExit("usage: bench_net.py client MODE ... (run the suite with benchmarks/run.py)")
    with contextlib.suppress(BrokenPipeError):
        client_main(sys.argv[2:])
