"""Node's ordering rules (shared/node-oracle/RULES.md) on cases the oracle's scenarios do not cover.

Each test is one behaviour, run in-process through ``phaseloop.node.run`` (Node's process
lifetime), asserting the exact list of tokens. Real Node v20.20.2 printed the same list for
the JavaScript in the test's docstring (run with ``node``; the R3 poll timeouts were read
with ``strace -e trace=epoll_pwait``). Time is never faked: whatever must be due is made due
by busy-waiting, and what a test needs from the millisecond clock (a timer created exactly
1 ms after another) is checked, and the run repeated, when the clock slipped.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from phaseloop import node
from phaseloop.timers import now_ms  # the loop clock: whole ms of CLOCK_MONOTONIC, as uv_now (R6)

pytestmark = pytest.mark.timeout(20)


def busy(ms: float) -> None:
    """Keep the loop thread busy for ``ms`` milliseconds."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def wait_until(ms: int) -> int:
    """Busy-wait until the loop clock reads ``ms`` (or later); return the reading."""
    while (now := now_ms()) < ms:
        pass
    return now


def wait_tick() -> int:
    """Busy-wait for the loop clock's next millisecond: what follows starts early in that ms."""
    return wait_until(now_ms() + 1)


def run(main: Callable[[], object], **loop_options: Any) -> None:
    node.run(main, **loop_options)


def run_until_clean(scenario: Callable[[], tuple[list[str], bool]], attempts: int = 10) -> list[str]:
    """Run a scenario whose set-up needs exact milliseconds until a run where the clock did not slip.

    If the set-up itself never came out right (the process was descheduled mid-set-up in every
    run, as happens on a machine far more loaded than its cores), the test proves nothing
    either way: it is skipped with that reason, never passed.
    """
    for _ in range(attempts):
        tokens, clean = scenario()
        if clean:
            return tokens
    pytest.skip(f"inconclusive: the millisecond set-up slipped in all {attempts} runs (machine overloaded)")


# ---------------------------------------------------------------------------
# R7: a timers phase compares against one frozen `now`
# ---------------------------------------------------------------------------


def test_timer_created_in_timers_phase_waits_for_next_timers_phase() -> None:
    """R7 (a), across lists: the 1 ms timer created by ``a`` is not due in this phase, though
    ``a`` busy-waits 5 ms and the later ``b`` (another list, already due) still runs in it.

    In JavaScript::

        setTimeout(() => { log('a'); setTimeout(() => log('inner'), 1);
                           setImmediate(() => log('immediate')); busy(5); }, 2);
        setTimeout(() => log('b'), 3);
        busy(10);                                      // node: a,b,immediate,inner
    """
    tokens: list[str] = []
    log = tokens.append

    def a() -> None:
        log("a")
        node.set_timeout(log, 1, "inner")
        node.set_immediate(log, "immediate")
        busy(5)

    def main() -> None:
        node.set_timeout(a, 2)
        node.set_timeout(log, 3, "b")
        busy(10)

    run(main)
    assert tokens == ["a", "b", "immediate", "inner"]


def test_timer_due_during_a_callback_waits_for_next_timers_phase() -> None:
    """R7 (b): ``b`` becomes due (wall clock) while ``a`` busy-waits, but this phase's ``now``
    was read before ``a`` ran: the immediate ``a`` queued runs first.

    In JavaScript::

        setTimeout(() => { log('a'); setImmediate(() => log('immediate')); busy(30); }, 1);
        busy(5);
        setTimeout(() => log('b'), 20);                // node: a,immediate,b
    """
    tokens: list[str] = []
    log = tokens.append

    def a() -> None:
        log("a")
        node.set_immediate(log, "immediate")
        busy(30)

    def main() -> None:
        node.set_timeout(a, 1)
        busy(5)
        node.set_timeout(log, 20, "b")

    run(main)
    assert tokens == ["a", "immediate", "b"]


# ---------------------------------------------------------------------------
# R10: one list per duration; a list is drained before the next; ties by list id
# ---------------------------------------------------------------------------


def test_due_timers_run_list_by_list_not_by_expiry() -> None:
    """R10: x2 (5 ms list, due ~8 ms) runs before y1 (6 ms list, due ~6 ms): the 5 ms list
    comes first (its expiry is x1's) and is drained of all its due timers. A heap of
    deadlines, as asyncio's, gives x1, y1, x2.

    In JavaScript::

        setTimeout(() => log('x1'), 5);
        setTimeout(() => log('y1'), 6);
        busy(3);
        setTimeout(() => log('x2'), 5);
        busy(15);                                      // node: x1,x2,y1
    """
    tokens: list[str] = []
    log = tokens.append

    def main() -> None:
        node.set_timeout(log, 5, "x1")
        node.set_timeout(log, 6, "y1")
        busy(3)
        node.set_timeout(log, 5, "x2")
        busy(15)

    run(main)
    assert tokens == ["x1", "x2", "y1"]


def test_lists_of_equal_expiry_run_in_list_creation_order() -> None:
    """R10: a 2 ms timer created at ms m and a 1 ms timer created at m+1 both expire at m+2;
    the 2 ms list was created first, so it runs first (the whole-ms clock makes it a tie).

    In JavaScript::

        setImmediate(() => {
          const m = waitTick();
          setTimeout(() => log('a2'), 2);
          waitUntil(m + 1);
          setTimeout(() => log('b1'), 1);
          waitUntil(m + 4);
        });                                            // node: a2,b1
    """

    def scenario() -> tuple[list[str], bool]:
        tokens: list[str] = []
        log = tokens.append
        clean: list[bool] = []

        def setup() -> None:
            m = wait_tick()
            node.set_timeout(log, 2, "a2")
            ok = now_ms() == m
            wait_until(m + 1)
            node.set_timeout(log, 1, "b1")
            clean.append(ok and now_ms() == m + 1)
            wait_until(m + 4)

        run(lambda: node.set_immediate(setup))
        return tokens, clean == [True]

    assert run_until_clean(scenario) == ["a2", "b1"]


def test_list_requeued_after_partial_run_goes_behind_older_list_of_equal_expiry() -> None:
    """R10: when a list's next timer is not due yet, the list is re-queued under a new id.
    x1 runs at m+5; x2 (same 5 ms list, due m+7) is not due, so the list is re-queued behind
    y1's 4 ms list, created at m+3 with the same expiry m+7: y1 runs before x2, though x2 was
    created first. x2 stays at the head of its list, before x3.

    In JavaScript::

        setImmediate(() => {
          const m = waitTick();
          setTimeout(() => { log('x1'); waitUntil(m + 8); }, 5);
          waitUntil(m + 2);
          setTimeout(() => log('x2'), 5); setTimeout(() => log('x3'), 5);  // expiry m+7
          waitUntil(m + 3); setTimeout(() => log('y1'), 4);   // expiry m+7
          waitUntil(m + 5);
        });                              // node, in the runs where the clock kept up: x1,y1,x2,x3
    """

    def scenario() -> tuple[list[str], bool]:
        tokens: list[str] = []
        log = tokens.append
        clean: list[bool] = []

        def setup() -> None:
            m = wait_tick()

            def x1() -> None:
                clean.append(now_ms() <= m + 6)  # so this phase's now was before x2's expiry
                log("x1")
                wait_until(m + 8)

            node.set_timeout(x1, 5)
            clean.append(now_ms() == m)
            wait_until(m + 2)
            node.set_timeout(log, 5, "x2")
            node.set_timeout(log, 5, "x3")
            clean.append(now_ms() == m + 2)
            wait_until(m + 3)
            node.set_timeout(log, 4, "y1")
            clean.append(now_ms() == m + 3)
            wait_until(m + 5)

        run(lambda: node.set_immediate(setup))
        return tokens, len(clean) == 4 and all(clean)

    assert run_until_clean(scenario) == ["x1", "y1", "x2", "x3"]


# ---------------------------------------------------------------------------
# R13: clearTimeout / clearImmediate within a phase
# ---------------------------------------------------------------------------


def test_clear_timeout_in_timers_phase_unlinks_due_timers_of_any_list() -> None:
    """R13: ``a`` clears ``b`` (its own list) and ``c`` (the next list), both due in this
    same phase: neither runs; ``d`` does.

    In JavaScript::

        let b, c;
        setTimeout(() => { log('a'); clearTimeout(b); clearTimeout(c); }, 5);
        b = setTimeout(() => log('b'), 5);
        c = setTimeout(() => log('c'), 6);
        setTimeout(() => log('d'), 6);
        busy(10);                                      // node: a,d
    """
    tokens: list[str] = []
    log = tokens.append
    handles: dict[str, node.Timeout] = {}

    def a() -> None:
        log("a")
        node.clear_timeout(handles["b"])
        node.clear_timeout(handles["c"])

    def main() -> None:
        node.set_timeout(a, 5)
        handles["b"] = node.set_timeout(log, 5, "b")
        handles["c"] = node.set_timeout(log, 6, "c")
        node.set_timeout(log, 6, "d")
        busy(10)

    run(main)
    assert tokens == ["a", "d"]


@pytest.mark.parametrize(
    ("unref", "expected"), [(True, ["y", "x"]), (False, ["x", "y"])], ids=["unref", "ref"]
)
def test_clearing_an_unrefd_timer_leaves_its_list_queued(unref: bool, expected: list[str]) -> None:
    """R13, R10: clearing the last timer of a list drops the list only if the timer was ref'd
    (Node's ``unenroll``). Cleared unref'd, ``a`` leaves its 5 ms list queued, empty, due at
    m+5: ``x`` joins it at m+2; at m+6 the list is due but ``x`` (m+7) is not, so the list is
    re-queued under a new id, behind ``y``'s 4 ms list made at m+3 with the same expiry m+7.
    Cleared ref'd, the list goes, and ``x`` makes a new one at m+2, before ``y``'s.

    In JavaScript (``now()`` reads the loop clock off a probe timer's ``_idleStart``)::

        setImmediate(() => {
          const m = waitTick();
          const a = setTimeout(noop, 5); a.unref(); clearTimeout(a);
          waitUntil(m + 2); setTimeout(() => log('x'), 5);
          waitUntil(m + 3); setTimeout(() => log('y'), 4);
          waitUntil(m + 5); setTimeout(() => check(now() <= m + 6), 1);
          waitUntil(m + 6);
        });                                 // node: y,x; without a.unref(): x,y
    """

    def scenario() -> tuple[list[str], bool]:
        tokens: list[str] = []
        log = tokens.append
        clean: list[bool] = []

        def setup() -> None:
            m = wait_tick()
            a = node.set_timeout(lambda: None, 5)
            if unref:
                a.unref()
            node.clear_timeout(a)
            clean.append(now_ms() == m)
            wait_until(m + 2)
            node.set_timeout(log, 5, "x")
            clean.append(now_ms() == m + 2)
            wait_until(m + 3)
            node.set_timeout(log, 4, "y")
            clean.append(now_ms() == m + 3)
            wait_until(m + 5)
            node.set_timeout(lambda: clean.append(now_ms() <= m + 6), 1)  # the first timers phase's now
            clean.append(now_ms() == m + 5)
            wait_until(m + 6)

        run(lambda: node.set_immediate(setup))
        return tokens, len(clean) == 5 and all(clean)

    assert run_until_clean(scenario) == expected


def test_set_and_clear_cycles_leave_no_pile_of_dropped_lists() -> None:
    """Each clear of a lone ref'd 30 s timer drops its list (above); the list queue's stale
    entries are rebuilt away rather than kept for 30 s, and an unref'd one's list is reused."""
    sizes: dict[str, tuple[int, int]] = {}

    def main() -> None:
        timers = asyncio.get_running_loop()._node_timers  # type: ignore[attr-defined]
        for _ in range(10_000):
            node.clear_timeout(node.set_timeout(lambda: None, 30_000))
        sizes["ref"] = len(timers._queue), len(timers._lists)
        for _ in range(10_000):
            node.clear_timeout(node.set_timeout(lambda: None, 30_000).unref())
        sizes["unref"] = len(timers._queue), len(timers._lists)

    run(main)
    queued, lists = sizes["ref"]
    assert lists == 0 and queued <= 33
    assert sizes["unref"] == (queued + 1, 1)  # one list, made by the first timer and kept


def test_clear_immediate_in_check_phase_prevents_a_queued_immediate() -> None:
    """R13, R16: ``A`` clears ``B``, queued for this same check phase.

    In JavaScript::

        let b;
        setImmediate(() => { log('A'); clearImmediate(b); });
        b = setImmediate(() => log('B'));
        setImmediate(() => log('C'));                  // node: A,C
    """
    tokens: list[str] = []
    log = tokens.append
    handles: dict[str, node.Immediate] = {}

    def a() -> None:
        log("A")
        node.clear_immediate(handles["b"])

    def main() -> None:
        node.set_immediate(a)
        handles["b"] = node.set_immediate(log, "B")
        node.set_immediate(log, "C")

    run(main)
    assert tokens == ["A", "C"]


# ---------------------------------------------------------------------------
# R14: setInterval re-arms from its callback's start; an overrun is not caught up
# ---------------------------------------------------------------------------


def test_interval_rearms_from_its_callback_start_not_the_phase_now() -> None:
    """R14: ``iv`` runs after ``a`` busy-waited 10 ms in the same phase, so its next run is due
    5 ms after that (not 5 ms after the phase's ``now``): the 1 ms marker ``a`` created
    runs first.

    In JavaScript::

        setTimeout(() => { log('a'); busy(10); setTimeout(() => log('marker'), 1); }, 5);
        let n = 0;
        const iv = setInterval(() => { n++; log('iv' + n); if (n === 2) clearInterval(iv); }, 5);
        busy(8);                                       // node: a,iv1,marker,iv2
    """
    tokens: list[str] = []
    log = tokens.append
    runs = 0
    handles: dict[str, node.Timeout] = {}

    def a() -> None:
        log("a")
        busy(10)
        node.set_timeout(log, 1, "marker")

    def interval() -> None:
        nonlocal runs
        runs += 1
        log(f"iv{runs}")
        if runs == 2:
            node.clear_interval(handles["iv"])

    def main() -> None:
        node.set_timeout(a, 5)
        handles["iv"] = node.set_interval(interval, 5)
        busy(8)

    run(main)
    assert tokens == ["a", "iv1", "marker", "iv2"]


def test_interval_period_is_measured_from_callback_start() -> None:
    """R14: i1 starts at S and busy-waits 15 ms; i2 is due at S+20, before a marker created
    at S+15 with 10 ms (due S+25). Measured from the callback's end it would be due at S+35.

    In JavaScript::

        let n = 0;
        const iv = setInterval(() => {
          n++; log('i' + n);
          if (n === 1) { busy(15); setTimeout(() => log('marker'), 10); }
          if (n === 2) clearInterval(iv);
        }, 20);                                        // node: i1,i2,marker
    """
    tokens: list[str] = []
    log = tokens.append
    runs = 0
    handles: dict[str, node.Timeout] = {}

    def interval() -> None:
        nonlocal runs
        runs += 1
        log(f"i{runs}")
        if runs == 1:
            busy(15)
            node.set_timeout(log, 10, "marker")
        if runs == 2:
            node.clear_interval(handles["iv"])

    run(lambda: handles.setdefault("iv", node.set_interval(interval, 20)))
    assert tokens == ["i1", "i2", "marker"]


def test_interval_overrun_runs_once_in_next_timers_phase_without_catching_up() -> None:
    """R14: i1 overruns the 10 ms period 3 times; i2 is due at once but waits for the next
    timers phase (after the immediate i1 queued), and runs once; i3 is due 10 ms after i2's
    start, after a 5 ms marker: the missed periods are dropped, not caught up.

    In JavaScript::

        let n = 0;
        const iv = setInterval(() => {
          n++; log('i' + n);
          if (n === 1) { setImmediate(() => log('imm1')); busy(35); }
          if (n === 2) { setImmediate(() => log('imm2')); setTimeout(() => log('marker'), 5); }
          if (n === 3) clearInterval(iv);
        }, 10);                                   // node: i1,imm1,i2,imm2,marker,i3
    """
    tokens: list[str] = []
    log = tokens.append
    runs = 0
    handles: dict[str, node.Timeout] = {}

    def interval() -> None:
        nonlocal runs
        runs += 1
        log(f"i{runs}")
        if runs == 1:
            node.set_immediate(log, "imm1")
            busy(35)
        if runs == 2:
            node.set_immediate(log, "imm2")
            node.set_timeout(log, 5, "marker")
        if runs == 3:
            node.clear_interval(handles["iv"])

    run(lambda: handles.setdefault("iv", node.set_interval(interval, 10)))
    assert tokens == ["i1", "imm1", "i2", "imm2", "marker", "i3"]


# ---------------------------------------------------------------------------
# R16, R17: immediates
# ---------------------------------------------------------------------------


def test_immediate_queued_in_check_phase_runs_after_next_poll_phase() -> None:
    """R16: ``A`` makes a socket readable and queues ``B``: ``B`` waits for the next
    iteration's check phase, after that iteration's poll phase has run the I/O callback.

    In JavaScript::

        // c: a client socket connected to a server whose 'data' handler logs 'io'
        setImmediate(() => { log('A'); c.write('x'); setImmediate(() => log('B')); });
                                                       // node: A,io,B
    """
    tokens: list[str] = []
    log = tokens.append
    reader, writer = socket.socketpair()
    reader.setblocking(False)

    def on_readable() -> None:
        log("io")
        reader.recv(16)
        asyncio.get_running_loop().remove_reader(reader)

    def a() -> None:
        log("A")
        writer.send(b"x")
        node.set_immediate(log, "B")

    def main() -> None:
        asyncio.get_running_loop().add_reader(reader, on_readable)
        node.set_immediate(a)

    try:
        run(main)
    finally:
        reader.close()
        writer.close()
    assert tokens == ["A", "io", "B"]


def test_unref_immediate_runs_in_the_check_phase_a_ref_immediate_brings() -> None:
    """R17: an unref'd immediate does not keep the loop alive, but the loop is alive and
    iterating anyway: it runs in its place in the FIFO.

    In JavaScript::

        setImmediate(() => log('U')).unref();
        setImmediate(() => log('R'));                  // node: U,R
    """
    tokens: list[str] = []
    log = tokens.append

    def main() -> None:
        node.set_immediate(log, "U").unref()
        node.set_immediate(log, "R")

    run(main)
    assert tokens == ["U", "R"]


def test_immediate_ref_after_unref_keeps_the_loop_alive() -> None:
    """R17: ``ref()`` undoes ``unref()``.

    In JavaScript::

        setImmediate(() => log('X')).unref().ref();    // node: X
    """
    tokens: list[str] = []
    run(lambda: node.set_immediate(tokens.append, "X").unref().ref())
    assert tokens == ["X"]


# ---------------------------------------------------------------------------
# R25: close callbacks
# ---------------------------------------------------------------------------


class _Recorder(asyncio.Protocol):
    def __init__(self, name: str, log: Callable[[str], None]) -> None:
        self.name = name
        self.log = log

    def connection_lost(self, exc: Exception | None) -> None:
        self.log(f"{self.name}-close")


async def _start_server() -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_close_callbacks_run_in_reverse_order_of_closing() -> None:
    """R25: handles closed in one iteration get their close callbacks most recent first.

    In JavaScript::

        // c1, c2, c3: connected client sockets, each logging '<name>-close' on 'close'
        setImmediate(() => { c1.destroy(); c2.destroy(); c3.destroy(); log('destroyed'); });
                                              // node: destroyed,c3-close,c2-close,c1-close
    """
    tokens: list[str] = []
    log = tokens.append

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server, port = await _start_server()
        transports = []
        for name in ("c1", "c2", "c3"):
            transport, _ = await loop.create_connection(
                functools.partial(_Recorder, name, log), "127.0.0.1", port
            )
            transports.append(transport)

        def destroy_all() -> None:
            for transport in transports:
                transport.abort()
            log("destroyed")
            server.close()

        node.set_immediate(destroy_all)

    run(main)
    assert tokens == ["destroyed", "c3-close", "c2-close", "c1-close"]


def test_close_callbacks_of_handles_closed_in_poll_phase_run_in_close_phase() -> None:
    """R25, R2: sockets destroyed in a poll-phase callback (here: the connect callback) get
    their close callbacks in the close phase, after the check phase, most recent first.

    In JavaScript::

        const c1 = net.connect(port, host, () => {
          const c2 = net.connect(port, host, () => {
            c1.destroy(); c2.destroy(); setImmediate(() => log('immediate')); server.close();
          });
          c2.on('close', () => log('c2-close'));
        });
        c1.on('close', () => log('c1-close'));         // node: immediate,c2-close,c1-close
    """
    tokens: list[str] = []
    log = tokens.append

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server, port = await _start_server()
        first, _ = await loop.create_connection(lambda: _Recorder("c1", log), "127.0.0.1", port)

        class Second(_Recorder):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                first.abort()
                transport.abort()  # type: ignore[attr-defined]
                node.set_immediate(log, "immediate")
                server.close()

        await loop.create_connection(lambda: Second("c2", log), "127.0.0.1", port)

    run(main)
    assert tokens == ["immediate", "c2-close", "c1-close"]


# ---------------------------------------------------------------------------
# R26: unref'd timers
# ---------------------------------------------------------------------------


def test_unref_timer_fires_while_a_ref_timer_keeps_the_loop_alive() -> None:
    """R26: an unref'd timer still fires if the loop is alive at its expiry.

    In JavaScript::

        setTimeout(() => log('unref'), 10).unref();
        setTimeout(() => log('ref'), 30);              // node: unref,ref
    """
    tokens: list[str] = []
    log = tokens.append

    def main() -> None:
        node.set_timeout(log, 10, "unref").unref()
        node.set_timeout(log, 30, "ref")

    run(main)
    assert tokens == ["unref", "ref"]


def test_unref_timer_fires_while_a_listening_server_keeps_the_loop_alive() -> None:
    """R26 (and R3: the unref'd timer bounds the poll, the loop does not block for ever).

    In JavaScript::

        const server = net.createServer();
        server.listen(0, '127.0.0.1', () => {
          setTimeout(() => { log('unref-timer'); server.close(); }, 10).unref();
        });                                            // node: unref-timer, then it exits
    """
    tokens: list[str] = []
    log = tokens.append

    async def main() -> None:
        server, _ = await _start_server()

        def fire() -> None:
            log("unref-timer")
            server.close()

        node.set_timeout(fire, 10).unref()

    run(main)
    tokens.append("exit")
    assert tokens == ["unref-timer", "exit"]


def test_timer_ref_after_unref_keeps_the_loop_alive() -> None:
    """R26: ``ref()`` undoes ``unref()``.

    In JavaScript::

        setTimeout(() => log('X'), 5).unref().ref();   // node: X
    """
    tokens: list[str] = []
    run(lambda: node.set_timeout(tokens.append, 5, "X").unref().ref())
    assert tokens == ["X"]


# ---------------------------------------------------------------------------
# R3: how long the poll phase blocks
# ---------------------------------------------------------------------------


class RecordingSelector(selectors.DefaultSelector):
    """Logs each poll's timeout as a token: ``poll:0``, ``poll:block`` or ``poll:wait`` (ms in ``waits``)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__()
        self.log = log
        self.waits: list[float] = []

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            self.log("poll:block")
        elif timeout <= 0:
            self.log("poll:0")
        else:
            self.log("poll:wait")
            self.waits.append(timeout * 1000)
        return super().select(timeout)


def test_poll_waits_until_the_earliest_timer() -> None:
    """R3: one ref'd 50 ms timer: one poll that waits ~50 ms.

    In JavaScript::

        setTimeout(() => {}, 50)        // strace: epoll_pwait timeouts 0 (bootstrap), 49
    """
    tokens: list[str] = []
    selector = RecordingSelector(tokens.append)
    run(lambda: node.set_timeout(tokens.append, 50, "timer"), selector=selector)
    assert tokens == ["poll:wait", "timer"]
    assert 25 <= selector.waits[0] <= 50.1


def test_poll_does_not_block_while_ref_immediates_are_queued() -> None:
    """R3: a 0 ms poll per iteration while ref'd immediates are queued, then the wait for the timer.

    In JavaScript::

        let n = 0; (function f() { if (++n < 4) setImmediate(f); })(); setTimeout(() => {}, 30)
                                    // strace: 0 (bootstrap), 0, 0, 0, 29
    """
    tokens: list[str] = []
    selector = RecordingSelector(tokens.append)
    n = 0

    def f() -> None:
        nonlocal n
        n += 1
        if n < 4:
            node.set_immediate(f)

    def main() -> None:
        f()
        node.set_timeout(tokens.append, 30, "timer")

    run(main, selector=selector)
    assert tokens == ["poll:0", "poll:0", "poll:0", "poll:wait", "timer"]
    assert 10 <= selector.waits[0] <= 30.1


def test_unref_immediate_does_not_shorten_the_poll() -> None:
    """R3, R17: an unref'd immediate next to a 30 ms timer: no 0 ms poll; it runs after the wait.

    In JavaScript::

        setImmediate(() => {}).unref(); setTimeout(() => {}, 30)   // strace: 0 (bootstrap), 30
    """
    tokens: list[str] = []
    selector = RecordingSelector(tokens.append)

    def main() -> None:
        node.set_immediate(tokens.append, "unref-immediate").unref()
        node.set_timeout(tokens.append, 30, "timer")

    run(main, selector=selector)
    assert tokens == ["poll:wait", "unref-immediate", "timer"]
    assert 10 <= selector.waits[0] <= 30.1


def test_loop_with_nothing_ref_d_never_polls() -> None:
    """R3, R5: an unref'd timer alone: the loop is not alive, so it never iterates.

    In JavaScript::

        setTimeout(() => {}, 1000).unref()      // strace: no epoll_pwait of the loop at all
    """
    tokens: list[str] = []
    selector = RecordingSelector(tokens.append)
    run(lambda: node.set_timeout(tokens.append, 1000, "timer").unref(), selector=selector)
    assert tokens == []


def test_unref_timer_still_bounds_the_poll() -> None:
    """R3: unref'd timers stay in the timer heap: next to a listening server (ref'd) the poll
    waits for the unref'd 20 ms timer instead of blocking.

    In JavaScript::

        const s = net.createServer().listen(0, '127.0.0.1', () => {
          setTimeout(() => s.close(), 20).unref();
        });                             // strace: ..., epoll_pwait timeout 20, then exit
    """
    tokens: list[str] = []
    selector = RecordingSelector(tokens.append)

    async def main() -> None:
        server, _ = await _start_server()

        def fire() -> None:
            tokens.append("unref-timer")
            server.close()

        node.set_timeout(fire, 20).unref()
        tokens.append("listening")

    run(main, selector=selector)
    assert tokens[tokens.index("listening") :] == ["listening", "poll:wait", "unref-timer"]
    assert 10 <= selector.waits[-1] <= 20.1


def test_closing_handle_forces_a_zero_poll_timeout() -> None:
    """R3, R25: a handle closed in the timers phase makes the next poll not wait (for the
    1000 ms timer) so that its close callback runs at once.

    In JavaScript::

        const keep = setTimeout(() => {}, 1000);
        // c: a connected socket
        setTimeout(() => { fs.writeSync(2, 'destroy'); c.destroy(); }, 5);
        c.on('close', () => clearTimeout(keep));
                            // strace: ..., write(2, "destroy"), epoll_pwait timeout 0, close
    """
    tokens: list[str] = []
    log = tokens.append
    selector = RecordingSelector(log)
    ours, theirs = socket.socketpair()
    keep: node.Timeout | None = None

    class Closing(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            log("close-callback")
            node.clear_timeout(keep)

    async def main() -> None:
        nonlocal keep
        keep = node.set_timeout(log, 1000, "keep")
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(Closing, ours)

        def destroy() -> None:
            log("destroy")
            transport.abort()

        node.set_timeout(destroy, 5)

    try:
        run(main, selector=selector)
    finally:
        theirs.close()
    assert tokens[tokens.index("destroy") :] == ["destroy", "poll:0", "close-callback"]
