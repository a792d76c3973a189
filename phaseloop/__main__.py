"""``python -m phaseloop``: run an unmodified asyncio script on phaseloop."""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import sys
import warnings
from collections.abc import Sequence

from . import __version__
from .entry import EventLoopPolicy
from .queues import WAKEUP_MODES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m phaseloop", description="Run asyncio programs on phaseloop, Node's event loop."
    )
    parser.add_argument("--version", action="version", version=f"phaseloop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run SCRIPT (which calls asyncio.run) with phaseloop as its loop")
    run.add_argument("--wakeups", choices=WAKEUP_MODES, default="microtask", help="where task wake-ups go")
    run.add_argument("--threadpool-size", type=int, default=None, help="threads in the pool (default 4)")
    run.add_argument("script", help="path of the Python script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    script = options.script
    if not os.path.isfile(script):
        print(f"phaseloop: no such script: {script}", file=sys.stderr)
        return 2
    policy = EventLoopPolicy(wakeups=options.wakeups, threadpool_size=options.threadpool_size)
    with warnings.catch_warnings():
        # The policy API is deprecated from Python 3.14 on; it is still how
        # asyncio.run() picks its loop for a script we must not modify.
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy)
    sys.argv = [script, *options.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
