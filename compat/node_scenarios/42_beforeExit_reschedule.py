"""42_beforeExit_reschedule.js: 'beforeExit' (on_before_exit) fires when the loop has nothing
left; work scheduled from it restarts the loop, and it fires again when that work is done (R27).
Node's exit code is 0 here; run() returning normally is the Python counterpart."""

from _scenario import log, print_out, run

from phaseloop import node

rounds = 0


def before_exit() -> None:
    global rounds
    log(f"beforeExit{rounds}")
    rounds += 1
    if rounds <= 2:
        node.set_timeout(lambda: log("timer-from-beforeExit"), 1)
        node.next_tick(lambda: log("tick-from-beforeExit"))


def main() -> None:
    node.on_before_exit(before_exit)
    node.set_immediate(lambda: log("immediate"))


run(main)
log("exit-0")
print_out()
