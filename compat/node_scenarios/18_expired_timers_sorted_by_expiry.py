"""18_expired_timers_sorted_by_expiry.js: timers inserted in reverse order, then the main script
busy-waits so all of them are expired at the first timers run. They fire by expiry, all in one
timers phase, before the immediate (R10). (A preemption between the set_timeout calls gives
t1/t3 a later expiry; the order is then still by expiry, see expected.json.)"""

from _scenario import busy, log, print_out, run

from phaseloop import node


def main() -> None:
    node.set_immediate(lambda: log("immediate"))
    for d in [9, 7, 5, 3, 1]:
        node.set_timeout(log, d, f"t{d}")
    busy(30)


run(main)
print_out()
