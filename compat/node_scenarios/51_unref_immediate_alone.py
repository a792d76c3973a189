"""51_unref_immediate_alone.js: with nothing ref'd left the loop is not alive, so it does not
iterate and an unref'd immediate never reaches a check phase (R5, R17). Microtasks still run
(they are not part of the loop)."""

from _scenario import log, print_out, resolved, run, then

from phaseloop import node


def main() -> None:
    node.set_immediate(lambda: log("unref-immediate")).unref()
    then(resolved(), lambda: log("promise"))
    log("sync-end")


run(main)
log("exit")
print_out()
