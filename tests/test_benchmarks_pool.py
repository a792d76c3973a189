"""``benchmarks/pool.py`` pools runs of the suite into one verdict per cell.

The runs here are made up, with known run-by-run ratios, so that the interval and the
verdicts can be checked exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
POOL = REPO / "benchmarks" / "pool.py"
REPS = 7


def _run_file(
    path: Path, ratios: dict[str, list[float]], *, python: str = "3.12.1", checkout: str = "abc1234"
) -> str:
    """A run.py --json file where phaseloop's value in repetition i is ratios[cell][i] x stock's."""
    runs = []
    for name, by_rep in ratios.items():
        for rep, ratio in enumerate(by_rep):
            stock = 10.0 + rep  # stock itself drifts from one repetition to the next
            runs.append({"benchmark": name, "loop": "asyncio", "rep": rep, "metrics": {"us/op": stock}})
            runs.append(
                {"benchmark": name, "loop": "phaseloop", "rep": rep, "metrics": {"us/op": stock * ratio}}
            )
    runs.append({"benchmark": "node_only", "loop": "phaseloop", "rep": 0, "metrics": {"us/op": 1.0}})
    environment = {"python": python, "profile": "full", "checkout": checkout}
    path.write_text(json.dumps({"environment": environment, "runs": runs}))
    return str(path)


def _pool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(POOL), *args], capture_output=True, text=True, timeout=50, check=False
    )


def _row(output: str, name: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(name + " "))
    return line.split()


@pytest.mark.timeout(60)
def test_pooled_interval_and_verdicts(tmp_path: Path) -> None:
    spread = [0.85 + 0.01 * i for i in range(2 * REPS)]  # 0.85 ... 0.98 over the two runs
    first = _run_file(
        tmp_path / "a.json",
        {
            "ahead": spread[:REPS],
            "behind": [1.05 + 0.01 * i for i in range(REPS)],
            "even": [0.9, 1.1] * 3 + [1.0],
        },
    )
    second = _run_file(
        tmp_path / "b.json",
        {
            "ahead": spread[REPS:],
            "behind": [1.05 + 0.01 * i for i in range(REPS)],
            "even": [1.1, 0.9] * 3 + [1.0],
        },
    )
    proc = _pool(first, second)
    assert proc.returncode == 0, proc.stderr
    ahead = _row(proc.stdout, "ahead")
    # 14 ratios: at 95 %, the sign test's interval runs from the 3rd smallest to the 3rd largest.
    assert ahead[-5] == "14"
    assert ahead[-3:] == [f"{(0.91 + 0.92) / 2:.3f}x", "0.870-0.960", "ahead"]
    assert _row(proc.stdout, "behind")[-1] == "behind"
    assert _row(proc.stdout, "even")[-1] == "unresolved"
    assert not any(line.startswith("node_only") for line in proc.stdout.splitlines())
    assert "1 ahead, 1 unresolved, 1 behind (of 3 cells)" in proc.stdout


@pytest.mark.timeout(60)
def test_one_short_run_gives_no_interval(tmp_path: Path) -> None:
    proc = _pool(_run_file(tmp_path / "a.json", {"short": [0.9] * 5}))
    assert proc.returncode == 0, proc.stderr
    assert _row(proc.stdout, "short")[-4:] == ["-", "too", "few", "runs"]


@pytest.mark.timeout(60)
def test_runs_of_other_pythons_or_checkouts_are_refused(tmp_path: Path) -> None:
    cells = {"ahead": [0.9] * REPS}
    base = _run_file(tmp_path / "a.json", cells)
    other_python = _run_file(tmp_path / "b.json", cells, python="3.13.0")
    other_checkout = _run_file(tmp_path / "c.json", cells, checkout="def5678")

    proc = _pool(base, other_python)
    assert proc.returncode != 0
    assert "different Python versions: 3.12.1, 3.13.0" in proc.stderr

    proc = _pool(base, other_python, "--allow-mixed")
    assert proc.returncode != 0  # --allow-mixed is for checkouts only

    proc = _pool(base, other_checkout)
    assert proc.returncode != 0
    assert "different checkouts: abc1234, def5678" in proc.stderr

    proc = _pool(base, other_checkout, "--allow-mixed")
    assert proc.returncode == 0, proc.stderr
    assert _row(proc.stdout, "ahead")[-1] == "ahead"


@pytest.mark.timeout(60)
def test_a_file_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"medians": {}}))
    proc = _pool(str(path))
    assert proc.returncode != 0
    assert "not a run.py --json file" in proc.stderr


@pytest.mark.timeout(60)
def test_by_python_pools_each_python_apart_side_by_side(tmp_path: Path) -> None:
    faster = [0.85 + 0.01 * i for i in range(REPS)]
    slower = [1.05 + 0.01 * i for i in range(REPS)]
    files = [
        _run_file(tmp_path / "a.json", {"cell": faster}, python="3.13.0"),
        _run_file(tmp_path / "b.json", {"cell": faster}, python="3.13.0"),
        _run_file(tmp_path / "c.json", {"cell": slower}, python="3.11.7"),
    ]
    proc = _pool("--by-python", *files)
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.startswith("benchmark "))
    assert header.split()[-2:] == ["3.11.7", "3.13.0"]  # oldest Python first
    # 3.11: 7 ratios, 1.05 ... 1.11, interval from the 1st to the 7th; 3.13: 14 ratios, 0.85 ... 0.91 twice.
    assert _row(proc.stdout, "cell")[-6:] == [
        "1.080x",
        "1.050-1.110",
        "behind",
        "0.880x",
        "0.860-0.900",
        "ahead",
    ]
    assert "Python 3.11.7: 1 behind (of 1 cells)" in proc.stdout
    assert "Python 3.13.0: 1 ahead (of 1 cells)" in proc.stdout
    assert "**1.080x 1.050-1.110 behind**" in _pool("--by-python", "--markdown", *files).stdout

    other_checkout = _run_file(tmp_path / "d.json", {"cell": faster}, python="3.13.0", checkout="def5678")
    proc = _pool("--by-python", *files, other_checkout)
    assert proc.returncode != 0
    assert "different checkouts: abc1234, def5678" in proc.stderr
    assert _pool("--by-python", "--allow-mixed", *files, other_checkout).returncode == 0
