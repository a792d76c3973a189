"""17_timeout_delay_coercion.js: 0, negative, NaN, non-numeric, missing and > 2**31-1 delays
all become 1 ms; fractional delays are truncated (R9). All of these share the 1 ms list and
fire in insertion order; the 2 ms timer, created last, fires after them. (2**31 also warns:
TimeoutOverflowWarning, on stderr.)"""

import math

from _scenario import log, print_out, run

from phaseloop import node


def main() -> None:
    node.set_timeout(lambda: log("d1"), 1)
    node.set_timeout(lambda: log("d0"), 0)
    node.set_timeout(lambda: log("dneg"), -5)
    node.set_timeout(lambda: log("dnan"), math.nan)
    node.set_timeout(lambda: log("dstr"), "abc")
    node.set_timeout(lambda: log("dhuge"), 2**31)
    node.set_timeout(lambda: log("d1.9"), 1.9)
    node.set_timeout(lambda: log("dundef"))
    node.set_timeout(lambda: log("d2"), 2)


run(main)
print_out()
