"""34_threadpool_size1_fifo.js: with a pool of 1 thread (PHASELOOP_THREADPOOL_SIZE=1 set before
the pool is first used, as UV_THREADPOOL_SIZE in the JS) thread-pool jobs run one at a time in
submission order: the slow pbkdf2 submitted first finishes before the fast one (R28)."""

import asyncio
import hashlib
import os

from _scenario import log, print_out, run

os.environ["PHASELOOP_THREADPOOL_SIZE"] = "1"


def main() -> None:
    loop = asyncio.get_running_loop()
    slow = loop.run_in_executor(None, hashlib.pbkdf2_hmac, "sha256", b"pw", b"salt", 100000, 32)
    slow.add_done_callback(lambda _: log("slow"))
    fast = loop.run_in_executor(None, hashlib.pbkdf2_hmac, "sha256", b"pw", b"salt", 1, 32)
    fast.add_done_callback(lambda _: log("fast"))


run(main)
print_out()
