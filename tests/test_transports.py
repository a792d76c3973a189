"""phaseloop's transports: the stdlib's, with read sizes that keep reads off malloc's mmap path."""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import socket
import sys
import threading
from asyncio import selector_events, unix_events
from collections.abc import Iterator
from typing import Any

import pytest

import phaseloop
from phaseloop import transports
from phaseloop.transports import MAX_GROW_AFTER, SMALL_READ

pytestmark = pytest.mark.timeout(30)

LARGE = selector_events._SelectorSocketTransport.max_size  # the stdlib's 256 KiB


@pytest.fixture
def loop() -> Iterator[phaseloop.EventLoop]:
    loop = phaseloop.new_event_loop()
    yield loop
    loop.close()


class RecordingSocket(socket.socket):
    """A socket that notes what each recv() asked for and got, and what each send() was given and took."""

    reads: list[tuple[int, int]]
    sends: list[tuple[int, int]]

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        self.reads.append((bufsize, len(data)))
        return data

    def send(self, data: Any, flags: int = 0) -> int:
        sent = super().send(data, flags)
        self.sends.append((len(data), sent))
        return sent


def recording_pair() -> tuple[RecordingSocket, socket.socket]:
    ours, peer = socket.socketpair()
    recording = RecordingSocket(ours.family, ours.type, ours.proto, fileno=ours.detach())
    recording.reads = []
    recording.sends = []
    return recording, peer


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.received = 0
        self.waiter: asyncio.Future[None] | None = None
        self.wanted = 0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.received += len(data)
        if self.waiter is not None and self.received >= self.wanted and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(None)

    async def until(self, total: int) -> None:
        self.wanted = total
        if self.received < total:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter


async def one_read_per_message(sizes: list[int]) -> list[tuple[int, int]]:
    """Each message is queued whole before the loop polls, so each takes one read."""
    ours, peer = recording_pair()
    with peer:
        _, protocol = await asyncio.get_running_loop().create_unix_connection(Collect, sock=ours)
        total = 0
        for size in sizes:
            peer.sendall(b"m" * size)
            total += size
            await protocol.until(total)
    await protocol.lost
    return ours.reads


def feed(reader: transports._ReadSizes, arrivals: list[int]) -> list[int]:
    """What each read asks for while ``arrivals`` (bytes queued at once) are read as the transports do."""
    asked = []
    for waiting in arrivals:
        while waiting:
            size = reader._read_size
            got = min(size, waiting)
            asked.append(size)
            waiting -= got
            if got == size or size != reader._small_read:
                reader._adapt_read_size(size, got)
    return asked


class Reader(transports._ReadSizes):
    max_size = LARGE


# ---------------------------------------------------------------------------
# Which transports
# ---------------------------------------------------------------------------


def test_each_transport_is_phaseloop_s_subclass_of_the_stdlib_s(loop: phaseloop.EventLoop) -> None:
    async def main() -> list[tuple[Any, type]]:
        running = asyncio.get_running_loop()
        server = await running.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tcp, _ = await running.create_connection(asyncio.Protocol, *server.sockets[0].getsockname()[:2])
        ours, peer = socket.socketpair()
        unix, _ = await running.create_unix_connection(asyncio.Protocol, sock=ours)
        udp, _ = await running.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        read_end, write_end = os.pipe()
        pipe, _ = await running.connect_read_pipe(asyncio.Protocol, os.fdopen(read_end, "rb", 0))
        found = [
            (tcp, selector_events._SelectorSocketTransport),
            (unix, selector_events._SelectorSocketTransport),
            (udp, selector_events._SelectorDatagramTransport),
            (pipe, unix_events._UnixReadPipeTransport),
        ]
        for transport, _ in found:
            transport.close()
        os.close(write_end)
        peer.close()
        server.close()
        await server.wait_closed()
        return found

    found = loop.run_until_complete(main())
    assert [type(transport) for transport, _ in found] == [
        transports.SocketTransport,
        transports.SocketTransport,
        transports.DatagramTransport,
        transports.ReadPipeTransport,
    ]
    assert all(isinstance(transport, stdlib) for transport, stdlib in found)


@pytest.mark.parametrize(
    "ours", [transports.SocketTransport, transports.DatagramTransport, transports.ReadPipeTransport]
)
def test_a_transport_s_slot_never_hides_what_a_stdlib_class_defines(ours: type) -> None:
    """Only ``_sock``, whose class default (None) the transports set before the stdlib's
    ``__init__``; on 3.11 ``_write_ready`` stays the stdlib's method."""
    hidden = {name for name in ours.__slots__ for base in ours.__mro__[1:] if name in vars(base)}
    assert hidden <= {"_sock"}
    if sys.version_info >= (3, 13):
        assert len(ours.__slots__) > 5  # the stdlib's attributes and phaseloop's
    else:  # only _sock, which has a class default
        assert ours.__slots__ == (() if ours is transports.ReadPipeTransport else ("_sock",))
    if sys.version_info < (3, 12) and ours is transports.SocketTransport:
        assert ours._write_ready is selector_events._SelectorSocketTransport._write_ready


@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.11 and 3.12 keep the stdlib's dict (bar _sock)")
def test_transports_keep_what_the_stdlib_sets_in_slots(loop: phaseloop.EventLoop) -> None:
    """On 3.13, no dict per transport: what the stdlib's ``__init__``, reads, writes and
    closing set are slots (3.13 reads a transport's dict the slow way; if a new CPython
    sets an attribute these miss, add it to the names given to ``_instance_slots``)."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(5))
        await writer.drain()
        writer.close()

    async def main() -> dict[str, dict[str, Any]]:
        running = asyncio.get_running_loop()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        writer.write(b"hello")
        await writer.drain()
        assert await reader.readexactly(5) == b"hello"
        udp, _ = await running.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        udp.sendto(b"x", udp.get_extra_info("sockname"))
        read_end, write_end = os.pipe()
        pipe, protocol = await running.connect_read_pipe(Collect, os.fdopen(read_end, "rb", 0))
        os.write(write_end, b"abc")
        await protocol.until(3)
        found = {
            "stream": dict(vars(writer.transport)),
            "datagram": dict(vars(udp)),
            "pipe": dict(vars(pipe)),
        }
        writer.close()
        await writer.wait_closed()
        udp.close()
        os.close(write_end)
        await protocol.lost
        await asyncio.sleep(0)
        closed = {"stream": vars(writer.transport), "datagram": vars(udp), "pipe": vars(pipe)}
        found.update({f"{kind} closed": dict(attributes) for kind, attributes in closed.items()})
        server.close()
        await server.wait_closed()
        return found

    assert loop.run_until_complete(main()) == dict.fromkeys(
        ["stream", "datagram", "pipe", "stream closed", "datagram closed", "pipe closed"], {}
    )


# ---------------------------------------------------------------------------
# Read sizes
# ---------------------------------------------------------------------------


def test_small_messages_are_read_64_kib_at_a_time(loop: phaseloop.EventLoop) -> None:
    reads = loop.run_until_complete(one_read_per_message([1024] * 10 + [SMALL_READ - 1]))
    assert reads[:11] == [(SMALL_READ, 1024)] * 10 + [(SMALL_READ, SMALL_READ - 1)]
    assert reads[11:] == [(SMALL_READ, 0)]  # the EOF


def test_64_kib_messages_go_large_less_and_less_often(loop: phaseloop.EventLoop) -> None:
    # Each fills a 64 KiB read, which looks like the start of a stream; each large read
    # that comes back short doubles the full reads it takes to go large again.
    reads = loop.run_until_complete(one_read_per_message([SMALL_READ] * 20))
    large_at = [i + 1 for i, (asked, _) in enumerate(reads[:20]) if asked == LARGE]
    assert large_at == [2, 5, 10, 19]
    assert all(got == SMALL_READ for _, got in reads[:20])


def test_a_stream_goes_large_after_a_full_read_and_back_after_a_short_one() -> None:
    reader = Reader()
    one_mib = 1 << 20
    assert feed(reader, [one_mib]) == [SMALL_READ, LARGE, LARGE, LARGE, LARGE]
    assert reader._grow_after == 2  # the last large read came back short
    assert feed(reader, [1024, 1024]) == [SMALL_READ, SMALL_READ]
    assert feed(reader, [SMALL_READ] * 3) == [SMALL_READ, SMALL_READ, LARGE]
    assert reader._grow_after == 4
    # A large read that fills its request is a stream: one full small read is enough again.
    assert feed(reader, [3 * LARGE]) == [SMALL_READ] * 4 + [LARGE, LARGE]
    assert reader._grow_after == 1


def test_the_bar_to_go_large_stops_doubling_at_its_cap() -> None:
    reader = Reader()
    asked = feed(reader, [SMALL_READ] * 1000)
    gaps = [i for i, size in enumerate(asked) if size == LARGE]
    assert [b - a for a, b in itertools.pairwise(gaps)][-3:] == [MAX_GROW_AFTER + 1] * 3


def test_a_lower_max_size_caps_every_read(loop: phaseloop.EventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transports.SocketTransport, "max_size", 1000)
    reads = loop.run_until_complete(one_read_per_message([5000]))
    assert {asked for asked, _ in reads} == {1000}
    assert [got for _, got in reads] == [1000] * 5 + [0]


def test_a_stream_from_a_thread_arrives_whole_and_reads_keep_the_rule(loop: phaseloop.EventLoop) -> None:
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB

    async def main() -> tuple[bytes, list[tuple[int, int]]]:
        ours, peer = recording_pair()
        _, protocol = await asyncio.get_running_loop().create_unix_connection(Collect, sock=ours)

        def send() -> None:
            with peer:
                peer.sendall(payload)

        sender = threading.Thread(target=send)
        sender.start()
        await protocol.lost
        sender.join()
        return b"".join(protocol.chunks), ours.reads

    received, reads = loop.run_until_complete(main())
    assert received == payload
    # Large reads only after a full one, small ones after a short large one.
    for (asked, got), (next_asked, _) in itertools.pairwise(reads):
        if asked == LARGE and got < LARGE:
            assert next_asked == SMALL_READ
        elif next_asked == LARGE:
            assert got == asked
    assert {asked for asked, _ in reads} <= {SMALL_READ, LARGE}


# ---------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------

LOOPS = [asyncio.new_event_loop, phaseloop.new_event_loop]


async def connect(sock: socket.socket, factory: Any = asyncio.Protocol) -> tuple[Any, Any]:
    return await asyncio.get_running_loop().create_unix_connection(factory, sock=sock)


def test_a_write_the_socket_takes_whole_is_one_send_and_nothing_buffered(loop: phaseloop.EventLoop) -> None:
    async def main() -> tuple[list[tuple[int, int]], int, bytes]:
        ours, peer = recording_pair()
        with peer:
            transport, _ = await connect(ours)
            transport.write(b"m" * 1024)
            buffered = transport.get_write_buffer_size()
            transport.close()
            return ours.sends, buffered, peer.recv(4096)

    sends, buffered, received = loop.run_until_complete(main())
    assert sends == [(1024, 1024)]
    assert buffered == 0
    assert received == b"m" * 1024


def drain_in_a_thread(peer: socket.socket, received: bytearray) -> threading.Thread:
    """Read ``peer`` into ``received`` until EOF, in a thread, then close it."""

    def read() -> None:
        with peer:
            while data := peer.recv(1 << 20):
                received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    return reader


@pytest.mark.parametrize("new_loop", LOOPS, ids=["asyncio", "phaseloop"])
def test_writes_the_socket_cannot_take_at_once_arrive_whole_and_in_order(new_loop: Any) -> None:
    # Far more than a socket buffer holds, written before the peer reads anything:
    # the first write is sent in part, the rest wait in the transport's buffer.
    chunks: list[Any] = [bytes([i % 251]) * (64 * 1024 + i) for i in range(64)]
    chunks[3] = bytearray(chunks[3])
    chunks[5] = memoryview(chunks[5])

    async def main() -> tuple[int, bytes]:
        ours, peer = socket.socketpair()
        transport, _ = await connect(ours)
        for chunk in chunks:
            transport.write(chunk)
        buffered = transport.get_write_buffer_size()
        received = bytearray()
        reader = drain_in_a_thread(peer, received)
        transport.write_eof()
        transport.close()
        await asyncio.get_running_loop().run_in_executor(None, reader.join)
        return buffered, bytes(received)

    loop = new_loop()
    try:
        buffered, received = loop.run_until_complete(main())
    finally:
        loop.close()
    assert buffered > 0
    assert received == b"".join(bytes(chunk) for chunk in chunks)


class Flow(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")


def test_a_transport_makes_its_write_buffer_when_a_write_first_waits(loop: phaseloop.EventLoop) -> None:
    big = bytes(range(256)) * (16 * 1024)  # 4 MiB: more than a socket buffer holds

    async def main() -> tuple[list[object], list[str], bytes]:
        ours, peer = socket.socketpair()
        transport, protocol = await connect(ours, Flow)
        seen: list[object] = [transport._buffer]
        transport.write(b"small")
        seen += [transport._buffer, transport.get_write_buffer_size()]
        transport.write(big)
        seen += [type(transport._buffer), transport.get_write_buffer_size() > 0]
        received = bytearray()
        reader = drain_in_a_thread(peer, received)
        while transport.get_write_buffer_size():
            await asyncio.sleep(0.001)
        transport.close()
        await asyncio.get_running_loop().run_in_executor(None, reader.join)
        return seen, protocol.events, bytes(received)

    seen, events, received = loop.run_until_complete(main())
    made = collections.deque if sys.version_info >= (3, 12) else bytearray
    assert seen == [(), (), 0, made, True]
    assert events == ["pause", "resume"]
    assert received == b"small" + big


def test_writelines_on_a_new_transport_arrives_whole_and_in_order() -> None:
    lines = [bytes([i]) * (256 * 1024 + i) for i in range(12)]  # 3 MiB
    lines[1] = bytearray(lines[1])
    lines[2] = memoryview(lines[2])

    async def main() -> tuple[list[str], bytes]:
        ours, peer = socket.socketpair()
        transport, protocol = await connect(ours, Flow)
        transport.writelines([b"first ", b"line "])
        transport.writelines(lines)
        received = bytearray()
        reader = drain_in_a_thread(peer, received)
        transport.write_eof()
        transport.close()
        await asyncio.get_running_loop().run_in_executor(None, reader.join)
        return protocol.events, bytes(received)

    outcomes = []
    for new_loop in LOOPS:
        loop = new_loop()
        try:
            outcomes.append(loop.run_until_complete(main()))
        finally:
            loop.close()
    (stock_events, stock_received), (events, received) = outcomes
    # The stdlib's writelines pauses the protocol on 3.11 (a write) and not on 3.12+.
    assert events == stock_events
    assert received == stock_received == b"first line " + b"".join(bytes(line) for line in lines)


@pytest.mark.parametrize("new_loop", LOOPS, ids=["asyncio", "phaseloop"])
def test_writes_that_cannot_be_sent_fail_as_the_stdlib_s_do(new_loop: Any) -> None:
    async def main() -> list[str]:
        ours, peer = socket.socketpair()
        with peer:
            transport, _ = await connect(ours)
            seen = []
            for data in ("text", 1024, None):
                try:
                    transport.write(data)
                except TypeError:
                    seen.append("TypeError")
            transport.write(b"")
            transport.write_eof()
            try:
                transport.write(b"after eof")
            except RuntimeError:
                seen.append("RuntimeError")
            transport.close()
            seen.append(repr(peer.recv(100)))
            return seen

    loop = new_loop()
    try:
        seen = loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == ["TypeError", "TypeError", "TypeError", "RuntimeError", "b''"]


@pytest.mark.parametrize("new_loop", LOOPS, ids=["asyncio", "phaseloop"])
def test_a_write_to_a_reset_connection_loses_the_connection_once(new_loop: Any) -> None:
    class Lost(asyncio.Protocol):
        def __init__(self) -> None:
            self.lost: list[str] = []

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.append(type(exc).__name__)

    async def main() -> tuple[list[str], bool]:
        ours, peer = socket.socketpair()
        transport, protocol = await connect(ours, Lost)
        peer.close()
        for _ in range(3):
            transport.write(b"m" * 1024)
            await asyncio.sleep(0)
        for _ in range(3):
            await asyncio.sleep(0)
        return protocol.lost, transport.is_closing()

    loop = new_loop()
    try:
        lost, closing = loop.run_until_complete(main())
    finally:
        loop.close()
    assert lost == ["BrokenPipeError"]
    assert closing


# ---------------------------------------------------------------------------
# Datagrams and pipes
# ---------------------------------------------------------------------------


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, count: int) -> None:
        self.got: list[bytes] = []
        self.count = count
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)
        if len(self.got) == self.count:
            self.done.set_result(None)


@pytest.mark.parametrize("family", ["udp", "unix"])
def test_datagrams_arrive_whole_and_apart(loop: phaseloop.EventLoop, family: str) -> None:
    # 65 507 bytes: the largest UDP payload over IPv4; a UNIX datagram can be larger.
    sizes = [0, 1, 1024, 65_507] + ([150_000] if family == "unix" else [])

    async def main() -> list[bytes]:
        running = asyncio.get_running_loop()
        if family == "udp":
            transport, protocol = await running.create_datagram_endpoint(
                lambda: Datagrams(len(sizes)), local_addr=("127.0.0.1", 0)
            )
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.connect(transport.get_extra_info("sockname"))
        else:
            ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            transport, protocol = await running.create_datagram_endpoint(
                lambda: Datagrams(len(sizes)), sock=ours
            )
        with peer:
            for i, size in enumerate(sizes):
                peer.send(bytes([i]) * size)
            await protocol.done
        transport.close()
        return protocol.got

    got = loop.run_until_complete(main())
    assert got == [bytes([i]) * size for i, size in enumerate(sizes)]
    assert all(type(data) is bytes for data in got)


class SendStory(asyncio.DatagramProtocol):
    def __init__(self, story: list[object]) -> None:
        self.story = story
        self.lost = asyncio.get_running_loop().create_future()

    def error_received(self, exc: Exception) -> None:
        self.story.append(("error_received", type(exc).__name__))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.story.append(("connection_lost", type(exc).__name__))
        self.lost.set_result(None)


def _sendto_story(new_loop: Any) -> list[object]:
    """What sendto sends, raises and reports on each kind of datagram endpoint."""
    story: list[object] = []

    def received(peer: socket.socket) -> None:
        while (data := peer.recv(100)) != b"end":
            story.append(data)

    async def main() -> None:
        running = asyncio.get_running_loop()
        running.set_exception_handler(
            lambda _, context: story.append(type(context.get("exception")).__name__)
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.settimeout(10)
            address = peer.getsockname()
            # Not connected: the fast path, and what it leaves to the stdlib.
            transport, protocol = await running.create_datagram_endpoint(
                lambda: SendStory(story), local_addr=("127.0.0.1", 0)
            )
            for data in (b"one", bytearray(b"two"), memoryview(b"three"), b""):
                transport.sendto(data, address)
            try:
                transport.sendto("text", address)  # type: ignore[arg-type]
            except TypeError:
                story.append("TypeError")
            transport.sendto(b"four", ("255.255.255.255", address[1]))  # EACCES: no SO_BROADCAST
            transport.sendto(b"end", address)
            received(peer)
            transport.sendto(b"nowhere", None)  # the stdlib's fatal error: the transport closes
            story.append(transport.is_closing())
            await protocol.lost
            # Connected by the transport, and connected before it (sock=).
            transport, protocol = await running.create_datagram_endpoint(
                lambda: SendStory(story), remote_addr=address
            )
            transport.sendto(b"five")
            try:
                transport.sendto(b"six", ("127.0.0.1", 9))
            except ValueError:
                story.append("ValueError")
            transport.sendto(b"end")
            received(peer)
            transport.close()
            await protocol.lost
            connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            connected.connect(address)
            transport, protocol = await running.create_datagram_endpoint(
                lambda: SendStory(story), sock=connected
            )
            transport.sendto(b"seven")
            transport.sendto(b"end")
            received(peer)
            transport.close()
            await protocol.lost

    loop = new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return story


def test_sendto_sends_reports_and_fails_as_the_stdlib_s_does() -> None:
    story = _sendto_story(phaseloop.new_event_loop)
    assert story == _sendto_story(asyncio.new_event_loop)
    assert [data for data in story if isinstance(data, bytes) and data] == [
        b"one",
        b"two",
        b"three",
        b"five",
        b"seven",
    ]
    assert ("error_received", "PermissionError") in story
    assert ("connection_lost", "TypeError") in story


def test_a_pipe_s_data_arrives_whole(loop: phaseloop.EventLoop) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def main() -> bytes:
        read_end, write_end = os.pipe()
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", 0)
        )

        def write() -> None:
            with os.fdopen(write_end, "wb", 0) as pipe:
                pipe.write(payload)

        writer = threading.Thread(target=write)
        writer.start()
        data = await reader.read()
        writer.join()
        return data

    assert loop.run_until_complete(main()) == payload


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX subprocesses")
def test_a_subprocess_s_output_arrives_whole(loop: phaseloop.EventLoop) -> None:
    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.buffer.write(bytes(range(256)) * 2000)", stdout=-1
        )
        out, _ = await proc.communicate()
        return out

    assert loop.run_until_complete(main()) == bytes(range(256)) * 2000
