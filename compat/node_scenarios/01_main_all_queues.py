"""01_main_all_queues.js: the main script, then the nextTick queue, then the microtask queue
(promise reactions and queueMicrotask share one FIFO), then the loop.
setTimeout(0) against setImmediate is racy here (R29)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def main() -> None:
    log("sync-start")
    node.set_timeout(lambda: log("timeout0"), 0)
    node.set_immediate(lambda: log("immediate"))
    then(resolved(), lambda: log("promise"))
    node.queue_microtask(lambda: log("microtask"))
    node.next_tick(lambda: log("tick"))
    log("sync-end")


run(main)
print_out()
