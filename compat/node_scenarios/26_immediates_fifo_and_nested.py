"""26_immediates_fifo_and_nested.js: immediates run FIFO; ticks and microtasks run between them;
immediates queued during the check phase wait for the next iteration (R16)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def a() -> None:
    log("A")
    node.set_immediate(lambda: log("C-from-A"))
    node.next_tick(lambda: log("tick-from-A"))
    then(resolved(), lambda: log("promise-from-A"))


def b() -> None:
    log("B")
    node.set_immediate(lambda: log("D-from-B"))


def main() -> None:
    node.set_immediate(a)
    node.set_immediate(b)


run(main)
print_out()
