"""05_queues_in_immediate_cb.js: inside a check-phase callback the new immediate goes to the
next iteration; the new setTimeout(0) is due at the end of this iteration only if 1 ms of
loop time has passed. Usually immediate2 first, but racy (R29)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def immediate1() -> None:
    log("immediate1")
    node.set_timeout(lambda: log("timeout0"), 0)
    node.set_immediate(lambda: log("immediate2"))
    then(resolved(), lambda: log("promise"))
    node.next_tick(lambda: log("tick"))


def main() -> None:
    node.set_immediate(immediate1)


run(main)
print_out()
