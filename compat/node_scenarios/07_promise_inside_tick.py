"""07_promise_inside_tick.js: a promise reaction queued from a nextTick callback waits until
the whole nextTick queue (including ticks queued later) is empty (R19)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def t1() -> None:
    log("t1")
    then(resolved(), lambda: log("promise-from-t1"))
    node.next_tick(lambda: log("tick-from-t1"))


def main() -> None:
    node.next_tick(t1)
    node.next_tick(lambda: log("t2"))
    then(resolved(), lambda: log("p-main"))


run(main)
print_out()
