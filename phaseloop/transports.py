"""The stdlib's socket, datagram and read-pipe transports, reading without its allocator trap.

The stdlib asks for ``max_size`` (256 KiB) on every read: ``sock.recv(262144)``,
``recvfrom(262144)``, ``os.read(fd, 262144)``. CPython allocates the full 256 KiB
for the result and shrinks it to what arrived. On glibc, until the process has freed
a large ``mmap``'ed block (which raises malloc's mmap threshold for good), that
allocation is an ``mmap``, the shrink an ``mremap`` and the free a ``munmap``, plus
a page fault: about 20 µs of system time on every read, whatever its size. A small
program serving 1 KiB messages spends more time there than in everything else
(docs/performance.md, "Reads and the allocator"; python/cpython#85451).

So phaseloop's transports ask for what a read is likely to return:

- streams and pipes read 64 KiB, libuv's read size (``uv__read``), which malloc serves
  from its heap; reads that fill their request mean a stream is coming, and then reads
  ask for ``max_size`` until one comes back short (``_ReadSizes``);
- datagrams cannot be read short (the rest of a datagram would be lost). A UDP datagram
  (IPv4 or IPv6) carries less than 64 KiB, so UDP reads ask for 64 KiB, as libuv's do
  (``UV__UDP_DGRAM_MAXSIZE``); other families (a UNIX datagram can be larger) are
  received into one ``max_size`` buffer per loop and copied out at their size.

Everything else is the stdlib's: these classes override the read methods, the
stream transport the first send of ``write`` and when its write buffer is made
(``SocketTransport``), and the datagram transport the first send of ``sendto``. On
3.13 they keep the stdlib's attributes in slots, on 3.11 and 3.12 only ``_sock``
(``_instance_slots``).
"""

from __future__ import annotations

import collections
import os
import socket
import sys
from asyncio import protocols, selector_events, unix_events
from asyncio.log import logger
from typing import Any, Final, cast

from .loop import slots_for

SMALL_READ: Final = 64 * 1024
"""Bytes a stream or pipe read asks for until reads fill their request (libuv's read size)."""

MAX_GROW_AFTER: Final = 64
"""The most full 64 KiB reads it takes before reads ask for ``max_size`` again."""

# IPv4 and IPv6 datagrams: their 16-bit length fields hold every UDP payload in 64 KiB.
_IP_FAMILIES: Final = frozenset({socket.AF_INET, socket.AF_INET6})

# What the stdlib's stream transport buffers unsent data in (a bytearray before 3.12),
# and what stands for it until a write has to wait (SocketTransport).
_new_write_buffer: Final = collections.deque if sys.version_info >= (3, 12) else bytearray
_NO_BUFFER: Final = ()

# Typed as Any: these are the stdlib's private classes, which typeshed omits.
_SocketTransportBase: Any = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
_DatagramTransportBase: Any = selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]
_ReadPipeTransportBase: Any = unix_events._UnixReadPipeTransport  # type: ignore[attr-defined]


def _instance_slots(base: type, names: str) -> tuple[str, ...]:
    """The attributes a subclass of ``base`` keeps in slots: on 3.13 ``names``, less those
    a class of ``base``'s defines, which a slot would hide; on 3.11 and 3.12 ``_sock``
    alone. ``_sock`` stays: its class default, None, is for ``__del__``, and the
    subclasses set it first.

    The stdlib's transports keep their attributes in a dict. On 3.13 that is a split dict
    (their base ``BaseTransport`` has a slot), and 3.13 does not specialize attribute
    reads on one: every ``self._sock`` or ``self._protocol`` of the read and write paths
    took the generic lookup, ~50 ns more. Slots are read on the fast path, and take less
    memory than the dict did. 3.11 and 3.12 keep the dict's values inline, read as fast;
    slots measured no faster there, and on 3.11 larger (docs/performance.md, session 12).
    There only ``_sock`` is a slot: in the dict, its class default makes 3.12 read it the
    slow way (~45 ns), on every read and write; 3.11 reads it as fast either way.
    """
    if sys.version_info >= (3, 13):
        return slots_for(base, names, keep="_sock")
    return ("_sock",) if "_sock" in names.split() else ()


# What the stdlib's stream and datagram transports (3.11-3.13) and these subclasses set.
_SELECTOR_NAMES: Final = (
    "_sock _sock_fd _protocol _protocol_connected _server _buffer _conn_lost _closing _paused"
)


class _ReadSizes:
    """How much the next read of a stream or pipe asks for.

    64 KiB, until reads fill that: then ``max_size``, until a read of that comes back
    short. A large read that comes back short is the costly case (above), so each one
    doubles the number of full 64 KiB reads it takes to go large again, up to
    ``MAX_GROW_AFTER``, and a large read that fills its request (a real stream) resets
    it. Peers that send exactly 64 KiB at a time, which fill every small read, so go
    large about once in 64 reads rather than every other read.
    """

    max_size: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Instance attributes (slots on 3.13), set in one order before the stdlib's: reads
        # on the read path then stay on CPython's fast paths (class attributes cost more).
        small = min(SMALL_READ, self.max_size)  # a max_size set lower caps every read
        self._small_read = small
        self._read_size = small
        self._full_reads = 0
        self._grow_after = 1
        super().__init__(*args, **kwargs)

    def _adapt_read_size(self, size: int, received: int) -> None:
        """After a read that filled its request, or any large one (the others change nothing)."""
        if size == self._small_read:
            self._full_reads += 1
            if self._full_reads >= self._grow_after:
                self._full_reads = 0
                self._read_size = self.max_size
        elif received < size:
            self._read_size = self._small_read
            self._grow_after = min(2 * self._grow_after, MAX_GROW_AFTER)
        else:
            self._grow_after = 1


class SocketTransport(_ReadSizes, _SocketTransportBase):  # type: ignore[misc]
    """A TCP or UNIX stream transport: the stdlib's, with adaptive read sizes and a shorter hot path.

    The hot path of an echo is one read and one write. The stdlib's reader callback
    calls the read path through ``_read_ready_cb`` (one Python call more per read),
    and its ``write`` slices what it sent to find the unsent rest (on 3.12+ through a
    memoryview: 0.2-0.4 us a write, docs/performance.md). Here the read path is the
    reader callback, and a write sent whole returns at once.

    The write buffer is made by the first write that has to wait. Until then
    ``_buffer`` is an empty tuple, which the stdlib only reads (is it empty, how long,
    iterate): it appends only in ``write`` and ``writelines``, which make the buffer
    first. On 3.12+ the stdlib's empty ``deque`` is 760 bytes, a third of an idle
    connection's Python objects, and most connections never fill their socket.
    """

    __slots__ = _instance_slots(
        _SocketTransportBase,
        f"{_SELECTOR_NAMES} _eof _empty_waiter _read_ready_cb _write_ready"
        " _buffered _small_read _read_size _full_reads _grow_after",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sock = cast(Any, None)  # the class default, until the stdlib's __init__ sets it
        self._buffered = False  # set_protocol sets it
        super().__init__(*args, **kwargs)
        self._buffer: Any = _NO_BUFFER

    def _make_buffer(self) -> None:
        if self._buffer is _NO_BUFFER:
            self._buffer = _new_write_buffer()

    def set_protocol(self, protocol: Any) -> None:
        # Read on each call of _read_ready, as the stdlib reads _read_ready_cb: a protocol
        # switched between reads takes the other read path from the next read on.
        self._buffered = isinstance(protocol, protocols.BufferedProtocol)
        super().set_protocol(protocol)

    def _read_ready(self) -> None:
        # The stdlib's _read_ready__data_received (the Protocol read path), with ``size``
        # in place of ``max_size``; BufferedProtocols bring their own buffer (stdlib's path).
        if self._buffered:
            self._read_ready__get_buffer()
            return
        if self._conn_lost:
            return
        size = self._read_size
        try:
            data = self._sock.recv(size)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._read_ready__on_eof()
            return
        if len(data) == size or size != SMALL_READ:
            self._adapt_read_size(size, len(data))
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    # What set_protocol makes _read_ready_cb for a Protocol (nothing else calls it here).
    _read_ready__data_received = _read_ready

    def write(self, data: Any) -> None:
        # The stdlib's write when nothing is buffered and ``data`` is bytes: try to send it
        # now, and if it all went, that is all. Everything else (other types, errors to
        # raise, a lost connection, data already waiting) is the stdlib's write, as is the
        # unsent rest: its first send will most likely find the socket still full, and
        # then it buffers the rest and waits for the socket to become writable.
        if (
            type(data) is not bytes
            or self._buffer
            or self._conn_lost
            or self._eof
            or self._empty_waiter is not None
            or not data
        ):
            self._make_buffer()
            super().write(data)
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        if sent != len(data):
            self._make_buffer()
            super().write(memoryview(data)[sent:])

    def writelines(self, list_of_data: Any) -> None:
        self._make_buffer()
        super().writelines(list_of_data)


class ReadPipeTransport(_ReadSizes, _ReadPipeTransportBase):  # type: ignore[misc]
    """The read end of a pipe (a subprocess's stdout, ``connect_read_pipe``), read as streams are."""

    __slots__ = _instance_slots(
        _ReadPipeTransportBase,
        "_loop _pipe _fileno _protocol _closing _paused _small_read _read_size _full_reads _grow_after",
    )

    def _read_ready(self) -> None:
        size = self._read_size
        try:
            data = os.read(self._fileno, size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if data:
            if len(data) == size or size != SMALL_READ:
                self._adapt_read_size(size, len(data))
            self._protocol.data_received(data)
            return
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._closing = True
        self._loop._remove_reader(self._fileno)
        self._loop.call_soon(self._protocol.eof_received)
        self._loop.call_soon(self._call_connection_lost, None)


class DatagramTransport(_DatagramTransportBase):  # type: ignore[misc]
    """A UDP or UNIX datagram transport: UDP read 64 KiB at a time, others into the loop's buffer."""

    __slots__ = _instance_slots(
        _DatagramTransportBase, f"{_SELECTOR_NAMES} _address _buffer_size _unconnected _read_size _view"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sock = cast(Any, None)  # the class default, until the stdlib's __init__ sets it
        super().__init__(*args, **kwargs)
        # Neither connected by the transport (remote_addr) nor before it (a connected sock=):
        # the stdlib's sendto then calls sock.sendto(data, addr) (sendto's fast path).
        self._unconnected = not self._address and not self._extra.get("peername")
        self._read_size = min(SMALL_READ, self.max_size)
        self._view: memoryview | None = None
        if self._sock.family not in _IP_FAMILIES:
            self._view = self._loop._datagram_buffer(self.max_size)

    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        view = self._view
        try:
            if view is None:
                data, addr = self._sock.recvfrom(self._read_size)
            else:
                size, addr = self._sock.recvfrom_into(view)
                # Copied out before the protocol runs: the next datagram reuses the buffer.
                data = bytes(view[:size])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        self._protocol.datagram_received(data, addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        # The stdlib's sendto when ``data`` is non-empty bytes, the socket is not connected
        # and nothing is buffered: send it now. The stdlib checks the type, the address,
        # a lost connection and the buffer, and looks up the peer name, on every datagram;
        # everything else is still its sendto, as is a send the socket would block (which
        # it tries once more, then buffers).
        if type(data) is not bytes or not data or not self._unconnected or self._conn_lost or self._buffer:
            super().sendto(data, addr)
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            super().sendto(data, addr)
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on datagram transport")
