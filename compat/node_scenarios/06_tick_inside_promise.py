"""06_tick_inside_promise.js: a nextTick queued from a promise reaction waits until the whole
microtask queue (including reactions queued later) is empty (R19)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def p1() -> None:
    log("p1")
    node.next_tick(lambda: log("tick-from-p1"))


def main() -> None:
    chain = then(resolved(), p1)
    chain = then(chain, lambda: log("p1-then"))
    then(chain, lambda: log("p1-then-then"))
    then(resolved(), lambda: log("p2"))


run(main)
print_out()
