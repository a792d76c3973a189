"""15_timers_equal_delay_insertion_order.js: timers with the same delay fire in insertion
order (one list per duration, appended at the tail; R10)."""

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    for name in ["a", "b", "c", "d"]:
        node.set_timeout(log, 5, name)


run(main)
print_out()
