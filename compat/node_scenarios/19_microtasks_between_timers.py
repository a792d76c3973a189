"""19_microtasks_between_timers.js: the nextTick and microtask queues are drained after every
timer callback, both within one list and between lists (R11)."""

from collections.abc import Callable

from _scenario import busy, log, print_out, resolved, run, then

from phaseloop import node


def cb(name: str) -> Callable[[], None]:
    def callback() -> None:
        log(name)
        then(resolved(), lambda: log(name + "-promise"))
        node.next_tick(lambda: log(name + "-tick"))

    return callback


def main() -> None:
    node.set_timeout(cb("a5"), 5)
    node.set_timeout(cb("b5"), 5)
    node.set_timeout(cb("c6"), 6)
    busy(20)


run(main)
print_out()
