"""43_unref_immediate.js: an unref'd immediate does not stop the poll phase from blocking (only
ref'd immediates force a 0 poll timeout; R3, R17): next to a ref'd 30 ms timer it runs only
after the poll phase has waited for that timer. (Alone it never runs at all: see 51.)"""

import time

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    t0 = time.perf_counter()

    def unref_immediate() -> None:
        log("unref-immediate")
        blocked = (time.perf_counter() - t0) * 1000 >= 20
        log("ran-after-poll-blocked" if blocked else "ran-without-blocking")

    node.set_immediate(unref_immediate).unref()
    node.set_timeout(lambda: log("ref-timer-30"), 30)


run(main)
log("exit")
print_out()
