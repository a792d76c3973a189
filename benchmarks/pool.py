"""Pool several runs of the suite (``run.py --json``) into one ratio per cell, with a 95 % interval.

    python benchmarks/pool.py RUN.json [RUN.json ...] [--loop phaseloop] [--base asyncio]
        [--allow-mixed] [--by-python] [--markdown]

One run's cell rests on 7 to 15 processes per loop, and on this host such a cell moves by
±10 % from run to run (docs/performance.md): a loop 5 % ahead of another comes out behind
it in some runs. Pooling runs of the same code on the same Python gives each cell all their
run-by-run ratios (each process's value over the base loop's process of the same repetition
of the same run, as ``run.py``'s paired ratio) and a distribution-free 95 % interval for
their median, from the sign test's order statistics. Each cell is then

- ``ahead``: the whole interval is below 1.00x, the loop is faster (or smaller) than the base;
- ``behind``: the whole interval is above 1.00x;
- ``unresolved``: the interval holds 1.00x, so these runs cannot tell the two loops apart.

Beside it, each run's own cell (ratio of medians / paired ratio), as ``run.py`` printed it.
Runs of other checkouts, Pythons or sizes measure something else: the files must agree on
the Python version and the size profile, and on the checkout unless ``--allow-mixed``
(for checkouts whose ``phaseloop/`` and ``benchmarks/`` do not differ). With
``--by-python`` the files are grouped by Python version, each group is pooled on its own
(and must agree within itself), and one table shows each group's pooled paired ratio,
interval and verdict side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from run import paired_ratio, render, run_ratios, values_by_rep  # noqa: E402

CONFIDENCE = 0.95


@dataclass
class Cell:
    """One (benchmark, metric): each run's values by repetition, for the loop and the base."""

    benchmark: str
    metric: str
    runs: list[tuple[dict[int, float], dict[int, float]]]


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The narrowest ``[x(k), x(n+1-k)]`` of the sorted values that holds the median of
    what they were drawn from with at least ``confidence``; None for fewer than 6 values
    (at 95 %). The median is below x(k) only if fewer than k values fall below it, and
    how many do is Binomial(n, 1/2)."""
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    k = 0
    below = 0.0  # P(Binomial(n, 1/2) <= k - 1), growing with k
    while k < n // 2:
        below_next = below + math.comb(n, k) / 2**n
        if below_next > tail:
            break
        below, k = below_next, k + 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def verdict(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return "too few runs"
    low, high = interval
    if high < 1:
        return "ahead"
    if low > 1:
        return "behind"
    return "unresolved"


Runs = list[dict[str, Any]]


def read(paths: list[str]) -> list[tuple[dict[str, Any], Runs]]:
    """Each file's environment and runs."""
    found = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if "environment" not in data or "runs" not in data:
            raise SystemExit(f"{path}: not a run.py --json file (no 'environment' or 'runs')")
        found.append((data["environment"], data["runs"]))
    return found


def load(paths: list[str], allow_mixed: bool) -> tuple[list[dict[str, Any]], list[Runs]]:
    """Each file's environment and runs, once they agree on what they measured."""
    files = read(paths)
    return agreed([env for env, _ in files], [runs for _, runs in files], allow_mixed)


def by_python(paths: list[str], allow_mixed: bool) -> list[tuple[list[dict[str, Any]], list[Runs]]]:
    """The files grouped by Python version (oldest first), each group agreeing within itself."""
    groups: dict[str, list[tuple[dict[str, Any], Runs]]] = {}
    for env, runs in read(paths):
        groups.setdefault(str(env.get("python")), []).append((env, runs))
    ordered = sorted(
        groups.items(), key=lambda item: [int(part) for part in item[0].split(".") if part.isdigit()]
    )
    return [
        agreed([env for env, _ in files], [runs for _, runs in files], allow_mixed) for _, files in ordered
    ]


def agreed(
    environments: list[dict[str, Any]], runs: list[Runs], allow_mixed: bool
) -> tuple[list[dict[str, Any]], list[Runs]]:
    """The environments and runs, once they agree on Python, sizes and (unless allowed) checkout."""
    for key, what in (("python", "Python versions"), ("profile", "size profiles"), ("checkout", "checkouts")):
        seen = sorted({str(env.get(key)) for env in environments})
        if len(seen) > 1 and not (key == "checkout" and allow_mixed):
            hint = " (--allow-mixed if their phaseloop/ and benchmarks/ agree)" if key == "checkout" else ""
            raise SystemExit(f"the runs are of different {what}: {', '.join(seen)}{hint}")
    return environments, runs


def cells(all_runs: list[list[dict[str, Any]]], loop: str, base: str) -> list[Cell]:
    """Every (benchmark, metric) that has both loops, in the order of the first run."""
    keys: dict[tuple[str, str], None] = {}
    for runs in all_runs:
        for record in runs:
            for metric in record.get("metrics", {}):
                keys.setdefault((record["benchmark"], metric))
    found = []
    for benchmark, metric in keys:
        pairs = [
            (values_by_rep(runs, benchmark, metric, loop), values_by_rep(runs, benchmark, metric, base))
            for runs in all_runs
        ]
        if any(mine and theirs for mine, theirs in pairs):
            found.append(Cell(benchmark, metric, pairs))
    return found


def pooled_paired(cell: Cell) -> tuple[list[float], tuple[float, float] | None]:
    """Every run-by-run ratio of the cell's runs, and the 95 % interval for their median."""
    pooled: list[float] = []
    for mine, theirs in cell.runs:
        if mine and theirs and statistics.median(theirs.values()) > 0:
            pooled += run_ratios(mine, theirs)
    return pooled, median_interval(pooled)


def row(cell: Cell) -> tuple[list[str], str]:
    """The cell's table row (each run's cell, then the pooled ones) and its verdict."""
    each_run = []
    mine_all: list[float] = []
    theirs_all: list[float] = []
    for mine, theirs in cell.runs:
        run_base = statistics.median(theirs.values()) if mine and theirs else 0
        if run_base <= 0:
            each_run.append("-")
            continue
        ratio = statistics.median(mine.values()) / run_base
        paired = paired_ratio(mine, theirs)
        each_run.append(f"{ratio:.2f}/{paired:.2f}" if paired is not None else f"{ratio:.2f}")
        mine_all += mine.values()
        theirs_all += theirs.values()
    pooled, interval = pooled_paired(cell)
    base_median = statistics.median(theirs_all)
    outcome = verdict(interval)
    return [
        cell.benchmark,
        cell.metric,
        " ".join(each_run),
        str(len(pooled)),
        f"{statistics.median(mine_all) / base_median:.2f}x" if base_median > 0 else "-",
        f"{statistics.median(pooled):.3f}x" if pooled else "-",
        f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-",
        outcome,
    ], outcome


def side_by_side(
    groups: list[tuple[list[dict[str, Any]], list[Runs]]], loop: str, base: str, markdown: bool
) -> None:
    """One row per cell, one column per group (Python): pooled paired ratio, interval, verdict."""
    columns = []  # per group: its Python, its runs' checkouts, its cells by key, its tally
    keys: dict[tuple[str, str], None] = {}
    for environments, all_runs in groups:
        found = {(cell.benchmark, cell.metric): cell for cell in cells(all_runs, loop, base)}
        keys.update(dict.fromkeys(found))
        checkouts = ", ".join(str(env.get("checkout")) for env in environments)
        columns.append((str(environments[0].get("python")), checkouts, found, dict[str, int]()))
    if not keys:
        raise SystemExit(f"no cell has runs of both {loop} and {base}")
    rows = []
    for key in keys:
        shown = list(key)
        for _, _, found, tally in columns:
            cell = found.get(key)
            if cell is None:
                shown.append("-")
                continue
            pooled, interval = pooled_paired(cell)
            outcome = verdict(interval)
            tally[outcome] = tally.get(outcome, 0) + 1
            text = f"{statistics.median(pooled):.3f}x" if pooled else "-"
            if interval:
                text += f" {interval[0]:.3f}-{interval[1]:.3f}"
            text += f" {outcome}"
            shown.append(f"**{text}**" if markdown and outcome != "ahead" else text)
        rows.append(shown)
    print(f"{loop} / {base}, lower is better: pooled paired ratio, its {CONFIDENCE:.0%} interval, verdict")
    for python, checkouts, _, _ in columns:
        print(f"Python {python}: checkouts {checkouts}")
    print(render(["benchmark", "metric", *(column[0] for column in columns)], rows, markdown))
    for python, _, _, tally in columns:
        counts = [
            f"{tally[name]} {name}"
            for name in ("ahead", "unresolved", "behind", "too few runs")
            if name in tally
        ]
        print(f"Python {python}: {', '.join(counts)} (of {sum(tally.values())} cells)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("files", nargs="+", metavar="RUN.json", help="run.py --json files")
    parser.add_argument("--loop", default="phaseloop", help="the loop judged (default phaseloop)")
    parser.add_argument("--base", default="asyncio", help="the loop it is judged against (default asyncio)")
    parser.add_argument("--allow-mixed", action="store_true", help="pool runs of different checkouts")
    parser.add_argument(
        "--by-python", action="store_true", help="pool each Python's runs apart, in one table side by side"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args(argv)

    if args.by_python:
        side_by_side(by_python(args.files, args.allow_mixed), args.loop, args.base, args.markdown)
        return 0
    environments, all_runs = load(args.files, args.allow_mixed)
    found = cells(all_runs, args.loop, args.base)
    if not found:
        raise SystemExit(f"no cell has runs of both {args.loop} and {args.base}")
    header = [
        "benchmark",
        "metric",
        "each run (of medians/paired)",
        "pairs",
        "pooled, of medians",
        "pooled, paired",
        f"{CONFIDENCE:.0%} interval",
        "verdict",
    ]
    rows, outcomes = [], []
    for cell in found:
        shown_row, outcome = row(cell)
        rows.append(shown_row)
        outcomes.append(outcome)
    checkouts = ", ".join(str(env.get("checkout")) for env in environments)
    print(
        f"{args.loop} / {args.base}, lower is better; Python {environments[0].get('python')}, "
        f"{environments[0].get('profile')} sizes; {len(environments)} runs (checkouts {checkouts})"
    )
    print(render(header, rows, args.markdown))
    counts = {name: outcomes.count(name) for name in ("ahead", "unresolved", "behind", "too few runs")}
    tally = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    print(f"{tally} (of {len(outcomes)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
