"""04_queues_in_timer_cb.js: inside a timer callback the new setTimeout(0) cannot run in this
timers phase; the immediate runs in this iteration's check phase first (R12)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def timer_cb() -> None:
    log("timer-cb")
    node.set_timeout(lambda: log("timeout0"), 0)
    node.set_immediate(lambda: log("immediate"))
    then(resolved(), lambda: log("promise"))
    node.next_tick(lambda: log("tick"))


def main() -> None:
    node.set_timeout(timer_cb, 2)


run(main)
print_out()
