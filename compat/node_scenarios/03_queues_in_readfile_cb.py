"""03_queues_in_readfile_cb.js: inside an I/O (poll-phase) callback: nextTick, then promises,
then the check phase (immediate) of the same iteration, then timers (R20, R29).

``fs.readFile(path, cb)``'s callback is a macrotask: libuv's ``uv__work_done`` calls it
from the poll phase and the queues drain after it, ticks first. A done-callback on the
``run_in_executor`` future would be a promise reaction instead (``fs.promises.readFile(path)
.then(cb)``: there Node itself prints ``promise`` before ``tick``), so the job hands the
callback to the loop with ``call_soon_threadsafe``, as a libuv worker does with
``uv_async_send``: it runs in the poll phase as one I/O callback, followed by its drain.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def read_file(path: str, callback: Callable[[], object]) -> None:
    loop = asyncio.get_running_loop()

    def job() -> None:
        Path(path).read_bytes()
        loop.call_soon_threadsafe(callback)

    loop.run_in_executor(None, job)


def readfile_cb() -> None:
    log("readFile-cb")
    node.set_timeout(lambda: log("timeout0"), 0)
    node.set_immediate(lambda: log("immediate"))
    then(resolved(), lambda: log("promise"))
    node.next_tick(lambda: log("tick"))
    log("readFile-cb-end")


def main() -> None:
    read_file(__file__, readfile_cb)


run(main)
print_out()
