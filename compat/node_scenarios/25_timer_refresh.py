"""25_timer_refresh.js: timeout.refresh() restarts the timer from now with the same delay and
moves it to the end of its list (R14)."""

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    a = node.set_timeout(lambda: log("a"), 40)
    node.set_timeout(lambda: log("b"), 60)

    def refresh_a() -> None:
        log("refresh-a")
        a.refresh()  # a is now due at ~30 + 40 = 70

    node.set_timeout(refresh_a, 30)


run(main)
print_out()
