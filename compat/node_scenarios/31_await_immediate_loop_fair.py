"""31_await_immediate_loop_fair.js: the same loop awaiting ``new Promise(r => setImmediate(r))``
yields one loop iteration per step, so the I/O callback and the timer interleave (R16, R21).

The JS async function runs its first step inside the main script; a Python task's first step
is a microtask right after it, which is the same place in this scenario."""

import asyncio
import os

from _scenario import busy, log, print_out, run

from phaseloop import node


async def fair_loop() -> None:
    loop = asyncio.get_running_loop()
    for i in range(4):
        log(f"step{i}")
        busy(5)
        settled = loop.create_future()
        node.set_immediate(settled.set_result, None)
        await settled
    log("loop-done")


def main() -> None:
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, os.stat, __file__).add_done_callback(lambda _: log("stat"))
    node.set_timeout(lambda: log("timeout"), 0)
    loop.create_task(fair_loop())


run(main)
print_out()
