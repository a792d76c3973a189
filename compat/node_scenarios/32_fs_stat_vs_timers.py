"""32_fs_stat_vs_timers.js: fs.stat goes to the thread pool; its completion runs in a poll
phase (R28). A 20 ms timer is far later than a stat; a 0 ms timer races with it."""

import asyncio
import os

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, os.stat, __file__).add_done_callback(lambda _: log("stat"))
    node.set_timeout(lambda: log("timeout0"), 0)
    node.set_timeout(lambda: log("timeout20"), 20)
    node.set_immediate(lambda: log("immediate"))


run(main)
print_out()
