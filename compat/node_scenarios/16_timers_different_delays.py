"""16_timers_different_delays.js: different delays scheduled in reverse order fire by expiry (R10)."""

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    node.set_timeout(lambda: log("t40"), 40)
    node.set_timeout(lambda: log("t20"), 20)
    node.set_timeout(lambda: log("t5"), 5)
    node.set_timeout(lambda: log("t30"), 30)


run(main)
print_out()
