"""48_timeout_vs_immediate_main_after_busy.js: as 02, but the main script busy-waits 5 ms: the
timer is due when the loop starts (timers run before the first poll and check), so it wins (R29)."""

from _scenario import busy, log, print_out, run

from phaseloop import node


def main() -> None:
    node.set_timeout(lambda: log("timeout"), 0)
    node.set_immediate(lambda: log("immediate"))
    busy(5)


run(main)
print_out()
