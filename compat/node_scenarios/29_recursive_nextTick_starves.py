"""29_recursive_nextTick_starves.js: recursive next_tick never yields to the loop: 10000 ticks all
run before the (already expired) timer and the immediate (R21)."""

from _scenario import busy, log, print_out, run

from phaseloop import node

n = 0


def tick() -> None:
    global n
    n += 1
    if n < 10000:
        node.next_tick(tick)
        return
    log(f"ticks-done-{n}")


def main() -> None:
    node.set_timeout(lambda: log("timeout"), 0)
    node.set_immediate(lambda: log("immediate"))
    node.next_tick(tick)
    busy(3)  # make the timer due before the loop starts


run(main)
print_out()
