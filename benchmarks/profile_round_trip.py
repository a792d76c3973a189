"""Where one TCP or UDP echo round trip's server time goes, function by function, on any loop.

    PYTHONPATH=. python benchmarks/profile_round_trip.py [--loop MODULE:FACTORY] [-n N] [--top K]
        [--size BYTES] [--primed] [--udp]

Runs ``tcp_protocol_1k``'s server (an ``asyncio.Protocol`` echoing 1 KiB messages, or
``--size`` bytes: 65536 is ``tcp_protocol_64k``'s), or with ``--udp``
``udp_ping_pong``'s (a ``DatagramProtocol`` echoing 64-byte datagrams, or ``--size``),
the client a second process with blocking sockets, under ``cProfile`` and prints each
function's own time per round trip, plus a floor: the same client against a bare
blocking ``recv``/``send`` server (no loop, no selector), which is the cost no loop can
avoid. cProfile inflates every Python call, so read the shares, not the absolute
microseconds (the unprofiled figures are ``run.py``'s). The process starts with a fresh
heap, as a small program does; ``--primed`` frees a 1 MiB block first, as ``run.py``'s
children do, which spares the stock transports' 256 KiB reads their ``mmap``
(docs/performance.md, "Reads and the allocator").
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import pstats
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_measure import prime_heap  # noqa: E402
from bench_net import HOST, UDP_BYE, EchoProtocol, UdpEcho, start_client  # noqa: E402


def _new_loop(spec: str) -> asyncio.AbstractEventLoop:
    module, _, factory = spec.partition(":")
    loop: asyncio.AbstractEventLoop = getattr(importlib.import_module(module), factory or "new_event_loop")()
    return loop


async def _serve(n: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    server = await loop.create_server(lambda: EchoProtocol(done), HOST, 0)
    proc = start_client("echo", server.sockets[0].getsockname()[1], size, n)
    start = time.process_time()
    await done
    cpu = time.process_time() - start
    server.close()
    await server.wait_closed()
    proc.communicate(timeout=60)
    return cpu


async def _serve_udp(n: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpEcho(done), local_addr=(HOST, 0))
    proc = start_client("udp", transport.get_extra_info("sockname")[1], size, n)
    start = time.process_time()
    await done
    cpu = time.process_time() - start
    transport.close()
    proc.communicate(timeout=60)
    return cpu


def _floor(n: int, size: int) -> float:
    """A blocking recv/send echo server: the syscalls and the least Python a round trip needs."""
    listener = socket.create_server((HOST, 0))
    proc = start_client("echo", listener.getsockname()[1], size, n)
    cpu = [0.0]

    def serve() -> None:
        conn, _ = listener.accept()
        start = time.thread_time()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
        cpu[0] = time.thread_time() - start

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    listener.close()
    proc.communicate(timeout=60)
    return cpu[0]


def _floor_udp(n: int, size: int) -> float:
    """A blocking recvfrom/sendto echo server, the UDP floor."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        proc = start_client("udp", sock.getsockname()[1], size, n)
        start = time.process_time()
        while (received := sock.recvfrom(65536))[0] != UDP_BYE:
            sock.sendto(*received)
        cpu = time.process_time() - start
    proc.communicate(timeout=60)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loop", default="phaseloop:new_event_loop")
    parser.add_argument("-n", type=int, default=20_000, help="round trips")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--size", type=int, help="bytes per message (1024; 64 with --udp)")
    parser.add_argument("--primed", action="store_true", help="free a 1 MiB block before anything else")
    parser.add_argument("--udp", action="store_true", help="udp_ping_pong's server (64-byte datagrams)")
    args = parser.parse_args()
    if args.primed:
        prime_heap()
    size = args.size or (64 if args.udp else 1024)
    floor, serve = (_floor_udp, _serve_udp) if args.udp else (_floor, _serve)

    floor_us = floor(args.n, size) / args.n * 1e6
    loop = _new_loop(args.loop)
    profiler = cProfile.Profile()
    try:
        unprofiled_us = loop.run_until_complete(serve(args.n, size)) / args.n * 1e6
        profiler.enable()
        loop.run_until_complete(serve(args.n, size))
        profiler.disable()
    finally:
        loop.close()

    stats: Any = pstats.Stats(profiler).stats
    rows = sorted(((tt, nc, func) for func, (_, nc, tt, _, _) in stats.items()), reverse=True)
    total = sum(tt for tt, _, _ in rows)
    print(f"{args.loop}: server CPU {unprofiled_us:.2f} us/round trip unprofiled; floor {floor_us:.2f} us")
    print(f"profiled: {total / args.n * 1e6:.2f} us/round trip; own time per round trip, top {args.top}:")
    for tt, calls, (filename, line, name) in rows[: args.top]:
        where = f"{Path(filename).name}:{line}" if line else "~"
        share = tt / total * 100
        per_trip = tt / args.n * 1e6
        print(f"  {per_trip:6.2f} us {share:5.1f}%  {calls / args.n:5.2f} calls  {name} ({where})")


if __name__ == "__main__":
    main()
