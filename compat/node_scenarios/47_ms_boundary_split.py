"""47_ms_boundary_split.js: two back-to-back set_timeout(fn, 1) calls usually share a start
millisecond and fire in the same timers phase, but if the loop clock ticks between the two
calls, t2 is one millisecond later and waits for a later timers phase, after the immediate
that t1 queued (R8). Racy."""

from _scenario import busy, log, print_out, run

from phaseloop import node


def t1() -> None:
    log("t1")
    node.set_immediate(lambda: log("immediate"))
    busy(5)


def main() -> None:
    node.set_timeout(t1, 1)
    node.set_timeout(lambda: log("t2"), 1)


run(main)
print_out()
