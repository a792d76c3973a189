"""Run the benchmark suite on any set of event loops, interleaved run by run; print medians and ratios.

    python benchmarks/run.py --loops asyncio:new_event_loop,uvloop:new_event_loop,phaseloop:new_event_loop \\
        [--quick | --smoke] [--only NAME,...] [--reps N] [--json out.json] [--markdown]
    python benchmarks/run.py --render out.json [--markdown]

A loop is ``MODULE:FACTORY``; its column is named after the module. Each
(benchmark, loop, repetition) runs in a fresh process (``run.py --child ...``), and
the loops take turns within each repetition, in a rotating order, so that drift in
the machine's load hits every loop alike. The table shows the median of the
repetitions (5 by default, 3 with ``--quick``, 1 with ``--smoke``; a full-size run
gives the rows that scatter most at least 15, ``Benchmark.full_reps``) and, in parentheses, the ratio to the
stock loop (``asyncio:...``; the first loop if none is): the ratio of the medians,
then the median of the run-by-run ratios (each run against the base loop's run of
the same repetition, see ``paired_ratio``). Every metric is lower-is-better, so
below 1x beats stock asyncio.
Node-API rows (phaseloop only) are compared with phaseloop instead, and where
``node`` is on PATH a ``node`` column runs the same scenario in Node.js
(``benchmarks/node/*.js``).

``--only`` takes benchmark names or group names (``core``, ``node``, ``net``, ``tree``,
``latency``). ``--smoke`` uses tiny sizes, one repetition, and asyncio + phaseloop
unless ``--loops`` says otherwise: it checks that everything runs, not how fast.
``--render`` prints the table of a run saved with ``--json`` again, without running anything.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_measure import FULL, PIN_ENV, QUICK, SMOKE, Benchmark, Unsupported, pin  # noqa: E402

GROUPS = {
    "core": "bench_core",
    "node": "bench_node",
    "net": "bench_net",
    "tree": "bench_tree",
    "latency": "bench_latency",
}
NODE = "node"  # the Node.js reference column
STOCK_MODULE = "asyncio"
DEFAULT_LOOPS = "asyncio:new_event_loop,uvloop:new_event_loop,phaseloop:new_event_loop"
SMOKE_LOOPS = "asyncio:new_event_loop,phaseloop:new_event_loop"
RUN_LIMIT = {FULL: 600.0, QUICK: 300.0, SMOKE: 120.0}  # seconds for one child process


@dataclass(frozen=True)
class LoopSpec:
    """``MODULE:FACTORY``, or the Node.js reference."""

    module: str
    factory: str = ""

    @property
    def name(self) -> str:
        return self.module

    @property
    def is_node(self) -> bool:
        return self.module == NODE and not self.factory

    def __str__(self) -> str:
        return f"{self.module}:{self.factory}" if self.factory else self.module


def parse_loops(text: str) -> list[LoopSpec]:
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        module, sep, factory = item.partition(":")
        if not sep or not module or not factory:
            raise SystemExit(f"--loops: {item!r} is not MODULE:FACTORY")
        specs.append(LoopSpec(module, factory))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise SystemExit("--loops: each loop needs its own module name (it names the column)")
    return specs


def suite() -> list[tuple[str, Benchmark]]:
    """Every benchmark, as (group, benchmark), in suite order."""
    found: list[tuple[str, Benchmark]] = []
    for group, module_name in GROUPS.items():
        module = importlib.import_module(module_name)
        found.extend((group, bench) for bench in module.BENCHMARKS)
    return found


def find_benchmark(name: str) -> Benchmark:
    for _, bench in suite():
        if bench.name == name:
            return bench
    raise SystemExit(f"no benchmark named {name!r}")


def applies(bench: Benchmark, loop: LoopSpec) -> bool:
    if loop.is_node:
        return bench.node is not None
    if bench.phaseloop_only:
        return loop.module.split(".")[0] == "phaseloop"
    return True


# --- one run, in the child process -----------------------------------------------------

_ALLOCATOR_PRIMER = [bytearray(1 << 20)]  # allocated here, freed by child() before the benchmark


def _module_version(name: str) -> str | None:
    if name == STOCK_MODULE:
        return platform.python_version()
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def compile_sources(loops: list[LoopSpec]) -> None:
    """Byte-compile the loops' packages and the benchmarks, as installing them would.

    The stdlib and pip-installed packages come compiled. A checkout run with
    PYTHONDONTWRITEBYTECODE set (this machine's default) would be compiled again in
    every child, and the compiler's memory (2.5 MiB for phaseloop) would show in
    that loop's peak RSS. Python reads existing .pyc files even when it writes none.
    """
    for loop in loops:
        if loop.is_node:
            continue
        spec = importlib.util.find_spec(loop.module.partition(".")[0])
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations and loop.module == "phaseloop":
            locations = [str(REPO / "phaseloop")]
        for location in locations:
            compileall.compile_dir(location, quiet=1)
    compileall.compile_dir(str(BENCH_DIR), maxlevels=0, quiet=1)


def child(bench_name: str, loop_text: str, profile: str) -> None:
    """Run one benchmark once on one loop and print its result as one JSON line."""
    from bench_measure import hold_fresh_heap, peak_rss_mib

    if importlib.util.find_spec("phaseloop") is None:
        sys.path.append(str(REPO))  # a checkout that is neither installed nor on PYTHONPATH
    bench = find_benchmark(bench_name)
    (spec,) = parse_loops(loop_text)
    # glibc raises its mmap threshold for good once a large mmap'ed block is freed; whether
    # that already happened depends on what the process imported. Without this, the stock
    # transports' 256 KiB recv buffers cost an mmap, 2 page faults and a munmap per read
    # in some children and not in others (seen as a 3x swing in echo system time).
    # (Benchmark.fresh_heap: instead, hold the threshold at its start-up value.)
    if not bench.fresh_heap:
        del _ALLOCATOR_PRIMER[:]
    factory = getattr(importlib.import_module(spec.module), spec.factory)
    size = bench.size(profile)
    try:
        if bench.fresh_heap:
            hold_fresh_heap()
        measured = bench.func(factory, size)
    except Unsupported as exc:
        print(json.dumps({"benchmark": bench.name, "loop": spec.name, "size": size, "unsupported": str(exc)}))
        return
    info = dict(measured.info)
    info.setdefault("peak RSS MiB", round(peak_rss_mib(), 1))
    record = {
        "benchmark": bench.name,
        "loop": spec.name,
        "loop_spec": str(spec),
        "size": size,
        "metrics": measured.metrics,
        "info": info,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "loop_version": _module_version(spec.module.split(".")[0]),
        "phaseloop_version": _module_version("phaseloop"),
        "uvloop_version": _module_version("uvloop"),
    }
    print(json.dumps(record))


# --- the driver ------------------------------------------------------------------------


def _pin_server() -> None:
    pin("server")


def choose_cpus() -> str | None:
    """The CPUs for the benchmark processes and the network clients (see bench_measure.pin)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return f"{cpus[-1]},{cpus[0]}" if len(cpus) >= 2 else None


def run_one(bench: Benchmark, loop: LoopSpec, profile: str) -> dict[str, Any]:
    """One fresh process for one (benchmark, loop) run; its record, or one with an ``error``."""
    size = bench.size(profile)
    if loop.is_node:
        assert bench.node is not None
        script, scenario = bench.node
        command = ["node", str(BENCH_DIR / "node" / script), scenario, str(size)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", bench.name]
        command += ["--loop", str(loop), "--profile", profile]
    record: dict[str, Any] = {"benchmark": bench.name, "loop": loop.name, "size": size}
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_LIMIT[profile], preexec_fn=_pin_server
        )
    except subprocess.TimeoutExpired:
        record["error"] = f"timed out after {RUN_LIMIT[profile]:.0f} s"
        return record
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        record["error"] = f"exit status {proc.returncode}: {tail}"
        record["stderr"] = proc.stderr[-4000:]
        return record
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        record["error"] = f"unreadable output: {lines[-1][:200]}"
        return record
    record.update(result)
    if loop.is_node:
        record["loop_version"] = node_version()
    return record


def node_version() -> str | None:
    try:
        return subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def bench_reps(bench: Benchmark, profile: str, reps: int) -> int:
    """Repetitions of ``bench``: ``reps``, or its ``full_reps`` in a full-size run if more."""
    return max(reps, bench.full_reps) if profile == FULL else reps


def paired_ratio(samples: dict[int, float], base: dict[int, float]) -> float | None:
    """The median over repetitions of each run's ratio to the base loop's run of the same
    repetition (run next to it), where there are at least 3 such pairs.

    The machine's speed drifts between slower and faster spells lasting several runs,
    which move both loops of a repetition together: the ratio of medians follows which
    spell each loop's middle run fell in, the paired ratio does not (docs/performance.md).
    """
    ratios = run_ratios(samples, base)
    return statistics.median(ratios) if len(ratios) >= 3 else None


def run_ratios(samples: dict[int, float], base: dict[int, float]) -> list[float]:
    """Each repetition's value over the base loop's in the same repetition (both > 0)."""
    return [value / base[rep] for rep, value in samples.items() if base.get(rep, 0) > 0 and value > 0]


def values_by_rep(records: list[dict[str, Any]], benchmark: str, metric: str, loop: str) -> dict[int, float]:
    """One loop's values of one (benchmark, metric) in a run, by repetition."""
    return {
        r["rep"]: r["metrics"][metric]
        for r in records
        if r["benchmark"] == benchmark and r["loop"] == loop and metric in r.get("metrics", {})
    }


def table_rows(
    benches: list[Benchmark],
    loops: list[LoopSpec],
    records: list[dict[str, Any]],
    python: tuple[int, ...] = sys.version_info[:2],
) -> tuple[list[str], list[list[str]], dict[str, Any], dict[str, Any]]:
    """The header, the rows, the medians and the paired ratios: one row per (benchmark, metric),
    for a run on ``python`` (the version that ran the records)."""
    stock = next((loop.name for loop in loops if loop.module == STOCK_MODULE), loops[0].name)
    header = ["benchmark", "metric"] + [loop.name for loop in loops]
    rows: list[list[str]] = []
    medians: dict[str, Any] = {}
    paired_ratios: dict[str, Any] = {}
    for bench in benches:
        runs = [record for record in records if record["benchmark"] == bench.name]
        metrics: list[str] = []
        for record in runs:
            metrics.extend(key for key in record.get("metrics", {}) if key not in metrics)
        errors = {record["loop"] for record in runs if "error" in record}
        unsupported = {record["loop"] for record in runs if "unsupported" in record}
        if python < bench.min_python:
            continue
        if not metrics:
            metrics = ["(no result)"]
        for metric in metrics:
            values: dict[str, float] = {}
            by_rep: dict[str, dict[int, float]] = {}
            for loop in loops:
                by_rep[loop.name] = values_by_rep(runs, bench.name, metric, loop.name)
                if by_rep[loop.name]:
                    values[loop.name] = statistics.median(by_rep[loop.name].values())
            medians.setdefault(bench.name, {})[metric] = values
            base_name = (
                stock
                if stock in values
                else next((loop.name for loop in loops if loop.name in values and not loop.is_node), None)
            )
            base = values.get(base_name) if base_name else None
            row = [bench.name, metric]
            for loop in loops:
                if loop.name in values:
                    cell = fmt(values[loop.name])
                    if base and loop.name != base_name and base > 0 and values[loop.name] > 0:
                        cell += f" ({values[loop.name] / base:.2f}x"
                        paired = paired_ratio(by_rep[loop.name], by_rep[base_name or ""])
                        if paired is not None:
                            bench_ratios = paired_ratios.setdefault(bench.name, {})
                            bench_ratios.setdefault(metric, {})[loop.name] = paired
                            cell += f", paired {paired:.2f}x"
                        cell += ")"
                    elif loop.name == base_name and base_name != stock:
                        cell += " (base)"
                elif loop.name in errors:
                    cell = "ERROR"
                elif loop.name in unsupported:
                    cell = "unsupported"
                elif not applies(bench, loop):
                    cell = "-"
                else:
                    cell = "?"
                row.append(cell)
            rows.append(row)
    return header, rows, medians, paired_ratios


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    out = []
    for line in [header, ["-" * w for w in widths], *rows]:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        out.append("  ".join(cells))
    return "\n".join(out)


def checkout() -> str | None:
    """The commit of this checkout, marked ``+dirty`` when phaseloop/ has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "phaseloop"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}{'+dirty' if dirty else ''}" if commit else None


def cpu_model() -> str | None:
    """The CPU's model name, which tells two hosts with the same kernel apart: Linux's
    /proc/cpuinfo, else ``platform.processor()``; None when neither says."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(
    loops: list[LoopSpec], records: list[dict[str, Any]], profile: str, reps: int
) -> dict[str, Any]:
    versions = {}
    for loop in loops:
        found = next(
            (r["loop_version"] for r in records if r["loop"] == loop.name and r.get("loop_version")), None
        )
        versions[loop.name] = found
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "checkout": checkout(),
        "profile": profile,
        "repetitions": reps,
        "loops": {loop.name: {"spec": str(loop), "version": versions[loop.name]} for loop in loops},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def heading(env: dict[str, Any], benches: list[Benchmark]) -> str:
    """The lines above a run's table: what ran, where, for how long, and how to read it."""
    profile, reps = env["profile"], env["repetitions"]
    more = sorted({bench_reps(bench, profile, reps) for bench in benches} - {reps})
    scattered = [bench.name for bench in benches if bench_reps(bench, profile, reps) != reps]
    more_reps = f" ({', '.join(map(str, more))} for {', '.join(scattered)})" if more else ""
    loop_text = ", ".join(f"{name} {info['version'] or '?'}" for name, info in env["loops"].items())
    load_before, load_after = env["load average before"], env["load average after"]
    cpus = env["pinned cpus (benchmark, client)"]
    return "\n".join(
        [
            f"Python {env['python']} ({env['implementation']}), {env['platform']}, {env['cpus']} CPUs"
            + (f" ({env['cpu']})" if env.get("cpu") else "")  # runs before session 14 did not record it
            + "; "
            f"{profile} sizes, median of {reps}{more_reps}; loops: {loop_text}; checkout {env['checkout']}",
            f"{env['seconds']:.0f} s; 1-minute load average {load_before[0]:.1f} before, "
            f"{load_after[0]:.1f} after (other work on the machine skews the numbers); "
            + (
                f"benchmark processes on CPU {cpus.split(',')[0]}, clients on CPU {cpus.split(',')[1]}"
                if cpus
                else "not pinned"
            ),
            "Lower is better; (N.NNx) = ratio of medians to stock asyncio, or to the row's '(base)' loop; "
            "paired N.NNx = median of the ratios run by run, each to the base loop's run of the same "
            "repetition (no ratio where a value is <= 0: a timer can fire early on libuv's cached clock).",
        ]
    )


def render_saved(path: str, markdown: bool) -> int:
    """Print the table of a run saved with ``--json``, as the run printed it."""
    try:
        data = json.loads(Path(path).read_text())
        env, records = data["environment"], data["runs"]
        loops = [
            LoopSpec(NODE) if name == NODE else parse_loops(info["spec"])[0]
            for name, info in env["loops"].items()
        ]
        ran = {record["benchmark"] for record in records}
        benches = [bench for _, bench in suite() if bench.name in ran]
        text = heading(env, benches)
        python = tuple(int(part) for part in env["python"].split(".")[:2])
        header, rows, _, _ = table_rows(benches, loops, records, python)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SystemExit(
            f"--render: {path} is not a run.py --json file ({type(exc).__name__}: {exc})"
        ) from exc
    print(text)
    print(render(header, rows, markdown))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--loops", help=f"MODULE:FACTORY,... (default {DEFAULT_LOOPS}, uvloop if installed)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, 3 repetitions")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repetition, asyncio + phaseloop")
    parser.add_argument("--only", help="benchmark or group names, comma-separated")
    parser.add_argument(
        "--reps",
        type=int,
        help="repetitions (default 5, --quick 3, --smoke 1; full runs: 15+ for the rows that scatter most)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write every run, the medians and the paired ratios as JSON"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--no-node", action="store_true", help="no Node.js reference column")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to CPUs")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--render", metavar="PATH", help="print the table of a run saved with --json, and exit"
    )
    parser.add_argument("--child", metavar="BENCHMARK", help=argparse.SUPPRESS)
    parser.add_argument("--loop", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default=FULL, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.child, args.loop, args.profile)
        return 0
    if args.render:
        return render_saved(args.render, args.markdown)

    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    reps = args.reps or {FULL: 5, QUICK: 3, SMOKE: 1}[profile]
    if args.loops:
        loops = parse_loops(args.loops)
    else:
        loops = parse_loops(SMOKE_LOOPS if args.smoke else DEFAULT_LOOPS)
        if importlib.util.find_spec("uvloop") is None:
            loops = [loop for loop in loops if loop.module != "uvloop"]
    everything = suite()
    if args.list:
        for group, bench in everything:
            print(f"{group:8} {bench.name:26} {bench.about}")
        return 0
    wanted = set(filter(None, (args.only or "").split(",")))
    unknown = wanted - {bench.name for _, bench in everything} - set(GROUPS)
    if unknown:
        raise SystemExit(f"--only: unknown benchmark or group: {', '.join(sorted(unknown))} (see --list)")
    benches = [bench for group, bench in everything if not wanted or bench.name in wanted or group in wanted]
    if not args.no_node and shutil.which("node") and any(bench.node for bench in benches):
        loops.append(LoopSpec(NODE))

    plan = []
    for bench in benches:
        if sys.version_info < bench.min_python:
            continue
        for rep in range(bench_reps(bench, profile, reps)):
            shift = rep % len(loops)
            for loop in loops[shift:] + loops[:shift]:
                if applies(bench, loop):
                    plan.append((bench, loop, rep))

    compile_sources(loops)
    cpus = None if args.no_pin else choose_cpus()
    if cpus:
        os.environ[PIN_ENV] = cpus
    load_before = os.getloadavg()
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    for index, (bench, loop, rep) in enumerate(plan, 1):
        record = run_one(bench, loop, profile)
        record["rep"] = rep
        records.append(record)
        if "error" in record:
            summary = "ERROR " + record["error"]
        elif "unsupported" in record:
            summary = "unsupported: " + record["unsupported"]
        else:
            summary = ", ".join(f"{key} {fmt(value)}" for key, value in record["metrics"].items())
        elapsed = time.monotonic() - started
        print(
            f"[{index:3}/{len(plan)} {elapsed:5.0f}s] {bench.name} {loop.name} #{rep + 1}: {summary}",
            file=sys.stderr,
        )

    env = environment(loops, records, profile, reps)
    env["load average before"], env["load average after"] = load_before, os.getloadavg()
    env["pinned cpus (benchmark, client)"] = cpus
    env["seconds"] = round(time.monotonic() - started, 1)
    header, rows, medians, paired_ratios = table_rows(benches, loops, records)
    print(heading(env, benches))
    print(render(header, rows, args.markdown))
    failures = [record for record in records if "error" in record]
    for record in failures:
        print(f"ERROR {record['benchmark']} on {record['loop']}: {record['error']}", file=sys.stderr)
        if record.get("stderr"):
            print(record["stderr"], file=sys.stderr)
    if args.json:
        data = {"environment": env, "medians": medians, "paired ratios": paired_ratios, "runs": records}
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
