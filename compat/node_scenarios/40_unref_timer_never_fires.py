"""40_unref_timer_never_fires.js: an unref'd timer does not keep the loop alive: the process
exits after the immediate, and the timer never fires (R26)."""

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    node.set_timeout(lambda: log("unref-timer"), 50).unref()
    node.set_immediate(lambda: log("immediate"))


run(main)
log("exit")
print_out()
