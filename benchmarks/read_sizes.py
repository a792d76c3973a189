"""What one socket read costs by the size it asks for, in a fresh heap and in a primed one.

    python benchmarks/read_sizes.py [-n N] [--rounds K]

No event loop: a TCP pair on 127.0.0.1, one message sent and read back at a time
(``send`` on one end, ``recv`` on the other until the message is in). Each heap state
runs in a process of its own: "fresh" holds glibc's mmap threshold at its start-up
128 KiB (``bench_measure.hold_fresh_heap``), "primed" frees a 1 MiB block first, which
raises it for good. The stdlib's transports ask for 256 KiB per read; phaseloop's ask for
64 KiB until reads fill that (phaseloop/transports.py). Prints µs per message (wall, user,
system) and minor page faults per message, medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_measure import Unsupported, hold_fresh_heap, prime_heap  # noqa: E402

REQUESTS = (256 * 1024, 64 * 1024)
MESSAGES = (1024, 64 * 1024)


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
    for sock in (sender, receiver):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sender, receiver


def _measure(
    sender: socket.socket, receiver: socket.socket, message: int, request: int, n: int
) -> list[float]:
    payload = b"x" * message
    recv = receiver.recv
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for _ in range(n):
        sender.sendall(payload)
        got = 0
        while got < message:
            got += len(recv(request))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return [
        wall / n * 1e6,
        (after.ru_utime - before.ru_utime) / n * 1e6,
        (after.ru_stime - before.ru_stime) / n * 1e6,
        (after.ru_minflt - before.ru_minflt) / n,
    ]


def child(heap: str, n: int, rounds: int) -> None:
    if heap == "fresh":
        hold_fresh_heap()
    else:
        prime_heap()
    sender, receiver = _pair()
    results: dict[str, list[list[float]]] = {}
    with sender, receiver:
        for _ in range(rounds):  # interleaved, so that a noisy spell hits every case
            for message in MESSAGES:
                for request in REQUESTS:
                    key = f"{message} {request}"
                    results.setdefault(key, []).append(_measure(sender, receiver, message, request, n))
    medians = {
        key: [statistics.median(run[i] for run in runs) for i in range(4)] for key, runs in results.items()
    }
    print(json.dumps(medians))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=5000, help="messages per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=("fresh", "primed"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        try:
            child(args.child, args.n, args.rounds)
        except Unsupported as exc:
            print(json.dumps({"unsupported": str(exc)}))
        return
    print(f"Python {sys.version.split()[0]}: us per message (send + reads), medians of {args.rounds}")
    print(f"{'heap':7} {'message':>8} {'request':>8} {'wall':>8} {'user':>7} {'system':>7} {'faults':>7}")
    for heap in ("fresh", "primed"):
        command = [sys.executable, __file__, "--child", heap, "-n", str(args.n), "--rounds", str(args.rounds)]
        out = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        if "unsupported" in out:
            print(f"{heap:7} unsupported: {out['unsupported']}")
            continue
        for key, (wall, user, system, faults) in out.items():
            message, request = key.split()
            print(f"{heap:7} {message:>8} {request:>8} {wall:8.2f} {user:7.2f} {system:7.2f} {faults:7.2f}")


if __name__ == "__main__":
    main()
