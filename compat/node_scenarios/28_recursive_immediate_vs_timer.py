"""28_recursive_immediate_vs_timer.js: recursive set_immediate runs one step per loop iteration,
so a due timer gets its turn between steps (no starvation; R16). Started from an I/O callback
(an fs.stat completion, in the poll phase) so the first step deterministically precedes the
timer (R29)."""

import asyncio
import os

from _scenario import busy, log, print_out, run

from phaseloop import node


def stat_cb(_: asyncio.Future[os.stat_result]) -> None:
    n = 0

    def step() -> None:
        nonlocal n
        log(f"imm{n}")
        busy(3)
        n += 1
        if n < 4:
            node.set_immediate(step)

    node.set_immediate(step)
    node.set_timeout(lambda: log("timeout"), 0)


def main() -> None:
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, os.stat, __file__).add_done_callback(stat_cb)


run(main)
print_out()
