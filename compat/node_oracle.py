"""Check phaseloop against what real Node.js printed: the Node-oracle harness.

    python compat/node_oracle.py [--runs N] [--only 03,17] [--loop phaseloop-debug] [--jobs 2]

Runs each Python translation in ``compat/node_scenarios/`` (``NN_name.py``, one per
``scenarios/NN_name.js`` of the oracle) ``--runs`` times, each in a fresh process as Node
runs a script, at most ``--jobs`` at a time, and compares the printed tokens with the
oracle's ``expected.json``: a deterministic scenario must print exactly Node's output, a
racy one one of the outputs Node was seen to print. One line per scenario, then the
scenarios left out and why, then ``N passed, N failed``; the exit status is 1 on any
failure.

The oracle is ``shared/node-oracle``, found as ``../shared/node-oracle`` next to the
repository, or wherever ``PHASELOOP_NODE_ORACLE`` points.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "compat" / "node_scenarios"
ORACLE_ENV = "PHASELOOP_NODE_ORACLE"
LOOP_ENV = "PHASELOOP_ORACLE_LOOP"
LOOPS = ("phaseloop", "phaseloop-debug")  # _scenario.LOOPS: the loop options of each
RUN_TIMEOUT = 30.0  # seconds for one run of one scenario; the slowest takes ~0.2 s

# The oracle scenarios with no Python counterpart, and why.
LEFT_OUT: dict[str, str] = {
    "10_async_await_null_ticks": (
        "V8 microtask turn counts: `await null` resumes one microtask turn later, while Python "
        "cannot await a non-awaitable and awaiting a done future does not suspend at all (0 turns)"
    ),
    "11_await_promise_vs_return_promise": (
        "V8 microtask turn counts: awaiting a native promise (1 turn) or a thenable (2 turns, "
        "PromiseResolveThenableJob) and an async function returning a promise (3 turns, adoption); "
        "Python awaits a done future in 0 turns, has no thenable adoption, and a coroutine that "
        "returns a future returns the future object itself"
    ),
    "12_promise_all_ticks": (
        "V8 microtask turn counts of Promise.all/race/allSettled: asyncio.gather's are its own "
        "implementation detail (over done futures it settles in turn 2 on Python 3.11 but eagerly, "
        "before a-then, on 3.12+), and Promise.race has no future-returning counterpart "
        "(asyncio.wait and as_completed are coroutines)"
    ),
    "13_unhandled_rejection_timing": (
        "unhandled-rejection tracking: asyncio has no 'unhandledRejection'/'rejectionHandled' "
        "events at the end of a drain; an exception nobody retrieved is only logged when the "
        "future is garbage-collected (Future.__del__ -> call_exception_handler)"
    ),
    "14_unhandled_rejection_default_throw": (
        "unhandled-rejection tracking (--unhandled-rejections=throw, 'uncaughtException' with "
        "origin 'unhandledRejection'): asyncio has neither; see 13"
    ),
    "46_esm_main_microtask_first": (
        "ES modules: an .mjs body is evaluated inside a microtask checkpoint; a Python script "
        "has no such entry point (phaseloop.node.run follows CommonJS, as in 01)"
    ),
    "50_event_emitter_sync": (
        "EventEmitter and events.once() are a Node library, not event-loop behaviour, and the "
        "Python standard library has no counterpart"
    ),
}

# Outputs real Node printed that the 60 runs behind expected.json did not catch. Each was
# seen on node v20.20.2 (libuv 1.46.0) on this project's 2-core machine; to record them in
# the oracle itself: node tools/run_all.js --only NN (in a copy, see its README).
EXTRA_NODE_OUTPUTS: dict[str, dict[str, str]] = {
    "32_fs_stat_vs_timers": {
        "timeout0,immediate,stat,timeout20": (
            "6 of 300 runs: the ms ticked right after setTimeout(0), and the stat was not done "
            "by the first (0 ms) poll"
        ),
    },
}


@dataclass
class Oracle:
    """What Node printed for one scenario (an entry of expected.json)."""

    name: str
    deterministic: bool
    outputs: dict[str, int]  # tokens joined by ",": how many of Node's runs printed them
    extra: dict[str, str] = field(default_factory=dict)  # EXTRA_NODE_OUTPUTS

    def allows(self, output: str) -> bool:
        return output in self.outputs or output in self.extra


@dataclass
class Result:
    """The outputs of one translated scenario over its runs."""

    name: str
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    stderr: list[str] = field(default_factory=list)  # of the runs that printed something else


def oracle_dir() -> Path:
    """The oracle folder: $PHASELOOP_NODE_ORACLE, else ../shared/node-oracle beside the repo."""
    configured = os.environ.get(ORACLE_ENV)
    return Path(configured) if configured else REPO.parent / "shared" / "node-oracle"


def load_oracle(folder: Path | None = None) -> dict[str, Oracle]:
    """expected.json, by scenario name, with the outputs of EXTRA_NODE_OUTPUTS."""
    folder = oracle_dir() if folder is None else folder
    entries = json.loads((folder / "expected.json").read_text())
    return {
        entry["name"]: Oracle(
            entry["name"], entry["deterministic"], entry["outputs"], EXTRA_NODE_OUTPUTS.get(entry["name"], {})
        )
        for entry in entries
    }


def translated() -> dict[str, Path]:
    """The translated scenarios, by name: compat/node_scenarios/NN_name.py."""
    return {path.stem: path for path in sorted(SCENARIOS.glob("[0-9][0-9]_*.py"))}


def run_once(script: Path, loop: str = "phaseloop", python: str = sys.executable) -> tuple[str, str]:
    """Run one scenario in a fresh process: (its tokens joined by ",", its stderr)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env[LOOP_ENV] = loop
    env.pop("PHASELOOP_THREADPOOL_SIZE", None)  # the default pool, as Node's runs had no UV_THREADPOOL_SIZE
    try:
        proc = subprocess.run(
            [python, str(script)],
            cwd=script.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        tokens = [line for line in stdout.splitlines() if line]
        return ",".join([*tokens, "<TIMEOUT>"]), ""
    tokens = [line for line in proc.stdout.splitlines() if line]
    if proc.returncode != 0:
        tokens.append(f"<EXIT {proc.returncode}>")
    return ",".join(tokens), proc.stderr


def run_scenarios(
    scripts: dict[str, Path],
    runs: int,
    *,
    jobs: int = 2,
    loop: str = "phaseloop",
    python: str = sys.executable,
    oracle: dict[str, Oracle] | None = None,
) -> dict[str, Result]:
    """Run every script ``runs`` times, at most ``jobs`` processes at a time."""
    results = {name: Result(name) for name in scripts}
    work = [(name, path) for name, path in scripts.items() for _ in range(runs)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = pool.map(lambda item: (item[0], run_once(item[1], loop, python)), work)
        for name, (output, stderr) in outcomes:
            result = results[name]
            result.counts[output] += 1
            expected = None if oracle is None else oracle.get(name)
            if (expected is None or not expected.allows(output)) and stderr:
                result.stderr.append(stderr)
    return results


def passed(result: Result, oracle: Oracle) -> bool:
    """Deterministic: always Node's one output; racy: only outputs Node printed."""
    return all(oracle.allows(output) for output in result.counts)


def describe(result: Result, oracle: Oracle) -> str:
    """One report line: name, PASS/FAIL, and how often each output was seen."""
    runs = sum(result.counts.values())
    kind = "deterministic" if oracle.deterministic else "racy"
    seen = []
    for output, count in result.counts.most_common():
        if output in oracle.outputs:
            mark = ""
        elif output in oracle.extra:
            mark = "(node, not in expected.json) "
        else:
            mark = "NOT NODE: "
        seen.append(f"{count}x {mark}{output}")
    verdict = "PASS" if passed(result, oracle) else "FAIL"
    return f"{verdict} {result.name} [{kind}, {runs} runs] " + " | ".join(seen)


def select(names: Iterable[str], only: str | None) -> list[str]:
    if not only:
        return sorted(names)
    prefixes = [p.strip() for p in only.split(",") if p.strip()]
    return sorted(name for name in names if any(name.startswith(p) for p in prefixes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per scenario (default 20)")
    parser.add_argument("--only", help="comma-separated scenario numbers or name prefixes, e.g. 03,17")
    parser.add_argument("--loop", choices=LOOPS, default="phaseloop", help="the loop to run them on")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2: 2 cores)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to run them with")
    parser.add_argument("--verbose", action="store_true", help="show the stderr of failing runs")
    args = parser.parse_args(argv)

    folder = oracle_dir()
    if not (folder / "expected.json").is_file():
        print(f"no Node oracle at {folder} (set {ORACLE_ENV})", file=sys.stderr)
        return 2
    oracle = load_oracle(folder)
    scripts = translated()
    names = select(set(oracle) | set(scripts), args.only)
    chosen = {name: scripts[name] for name in names if name in scripts and name in oracle}
    results = run_scenarios(
        chosen, args.runs, jobs=args.jobs, loop=args.loop, python=args.python, oracle=oracle
    )

    n_passed = n_failed = 0
    for name in names:
        if name in chosen:
            ok = passed(results[name], oracle[name])
            print(describe(results[name], oracle[name]), flush=True)
            if not ok and args.verbose:
                for stderr in results[name].stderr[:1]:
                    print("    " + stderr.strip().replace("\n", "\n    "))
        elif name in scripts:
            ok = False
            print(f"FAIL {name}: translated, but expected.json has no such scenario")
        elif name in LEFT_OUT:
            continue
        else:
            ok = False
            print(f"FAIL {name}: neither translated nor listed in LEFT_OUT with a reason")
        n_passed += ok
        n_failed += not ok
    for name in names:
        if name in LEFT_OUT and name not in scripts:
            print(f"LEFT OUT {name}: {LEFT_OUT[name]}")
    print(f"{n_passed} passed, {n_failed} failed")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
