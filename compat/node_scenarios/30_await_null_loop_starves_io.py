"""30_await_null_loop_starves_io.js: an async loop that only awaits already-resolved values
never leaves the microtask queue: the fs.stat completion and the due timer wait until it has
finished (here: 30 ms of awaiting; R21).

``await null`` has no exact Python counterpart: awaiting a done future does not suspend the
coroutine at all. Each step here awaits a future that a microtask resolves, so the task
suspends and is woken by a microtask (Task wake-ups are promise reactions), which is what
``await null`` does in V8; the loop still never gets a turn.
"""

import asyncio
import os
import time

from _scenario import log, print_out, run

from phaseloop import node


async def await_loop() -> None:
    loop = asyncio.get_running_loop()
    end = time.perf_counter() + 0.030
    i = 0
    while time.perf_counter() < end:
        settled = loop.create_future()
        node.queue_microtask(settled.set_result, None)
        await settled
        i += 1
    log("loop-done")


def main() -> None:
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, os.stat, __file__).add_done_callback(lambda _: log("stat"))
    node.set_timeout(lambda: log("timeout"), 0)
    loop.create_task(await_loop())


run(main)
print_out()
