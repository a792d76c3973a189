"""20_timer_in_timer_next_iteration.js: a 0 ms timer created inside a timer callback never runs in
the same timers phase (its start is "now", the phase compares against the time read when it
began; R7), even after a busy-wait. The sibling timer that was already due does run in this
phase; the immediate queued by t1 runs before the new timer."""

from _scenario import busy, log, print_out, run

from phaseloop import node


def t1() -> None:
    log("t1")
    node.set_timeout(lambda: log("t1-inner"), 0)
    node.set_immediate(lambda: log("immediate"))
    busy(5)


def main() -> None:
    node.set_timeout(t1, 1)
    node.set_timeout(lambda: log("t2"), 1)
    busy(5)


run(main)
print_out()
