"""09_queueMicrotask_shares_promise_queue.js: queueMicrotask and promise reactions (here:
future done-callbacks) share one FIFO queue (R18)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def qm2() -> None:
    log("qm2")
    node.queue_microtask(lambda: log("qm2-nested"))


def main() -> None:
    node.queue_microtask(lambda: log("qm1"))
    then(then(resolved(), lambda: log("p1")), lambda: log("p1b"))
    node.queue_microtask(qm2)
    then(resolved(), lambda: log("p2"))
    node.next_tick(lambda: log("tick"))


run(main)
print_out()
