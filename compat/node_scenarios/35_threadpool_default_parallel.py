"""35_threadpool_default_parallel.js: with the default pool of 4 threads the same two jobs run in
parallel and the fast one finishes first (R28). (hashlib.pbkdf2_hmac releases the GIL.)"""

import asyncio
import hashlib
import os

from _scenario import log, print_out, run

os.environ.pop("PHASELOOP_THREADPOOL_SIZE", None)  # the default size, whatever the caller's environment


def main() -> None:
    loop = asyncio.get_running_loop()
    slow = loop.run_in_executor(None, hashlib.pbkdf2_hmac, "sha256", b"pw", b"salt", 100000, 32)
    slow.add_done_callback(lambda _: log("slow"))
    fast = loop.run_in_executor(None, hashlib.pbkdf2_hmac, "sha256", b"pw", b"salt", 1, 32)
    fast.add_done_callback(lambda _: log("fast"))


run(main)
print_out()
