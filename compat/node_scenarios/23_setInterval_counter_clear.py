"""23_setInterval_counter_clear.js: set_interval 20 ms, cleared after 3 runs; a 50 ms timeout
lands between runs 2 and 3. The nextTick inside the interval runs right after each run (R14)."""

from _scenario import log, print_out, run

from phaseloop import node

n = 0
iv: node.Timeout | None = None


def interval() -> None:
    global n
    n += 1
    log(f"interval{n}")
    node.next_tick(lambda: log(f"tick{n}"))
    if n == 3:
        node.clear_interval(iv)


def main() -> None:
    global iv
    iv = node.set_interval(interval, 20)
    node.set_timeout(lambda: log("timeout50"), 50)


run(main)
print_out()
