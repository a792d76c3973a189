"""21_timers_phase_now_is_fixed.js: the timers phase uses the time read when it started (R7).
Timer b becomes due (wall clock) while a busy-waits, but it does not run in this phase; the
immediate queued by a runs first."""

from _scenario import busy, log, print_out, run

from phaseloop import node


def a() -> None:
    log("a")
    node.set_immediate(lambda: log("immediate"))
    busy(25)


def main() -> None:
    node.set_timeout(a, 1)
    node.set_timeout(lambda: log("b"), 10)


run(main)
print_out()
