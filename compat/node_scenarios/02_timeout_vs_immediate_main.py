"""02_timeout_vs_immediate_main.js: in the main script, setTimeout(0) against setImmediate
depends on whether 1 ms of loop time passed before the first timers run (R29): racy."""

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    node.set_timeout(lambda: log("timeout"), 0)
    node.set_immediate(lambda: log("immediate"))


run(main)
print_out()
