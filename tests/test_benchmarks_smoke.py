"""The benchmark suite runs end to end: ``benchmarks/run.py --smoke`` on asyncio and phaseloop.

It checks that every benchmark produced a number on every loop it applies to, never how fast.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "benchmarks" / "run.py"
NUMBER = re.compile(r"^-?\d+(\.\d+)?( \(\d+\.\d\dx\)| \(base\))?$")


def _run_smoke(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "smoke.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--no-node", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=230,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


@pytest.mark.timeout(240)
def test_smoke_run_prints_a_number_for_every_benchmark(tmp_path: Path) -> None:
    proc, data = _run_smoke(tmp_path)
    listed = subprocess.run(
        [sys.executable, str(RUN), "--list"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    names = [line.split()[1] for line in listed if line.strip()]
    min_python = {"tree_eager_sleep0": (3, 12)}
    expected = {name for name in names if sys.version_info >= min_python.get(name, (3, 0))}

    lines = proc.stdout.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("benchmark "))
    header = lines[header_at].split()
    assert header[:2] == ["benchmark", "metric"]
    assert header[2:] == ["asyncio", "phaseloop"]
    rows = lines[header_at + 2 :]
    seen = set()
    for row in rows:
        name = row.split()[0]
        cells = re.split(r"\s{2,}", row.strip())
        asyncio_cell, phaseloop_cell = cells[-2], cells[-1]
        assert NUMBER.match(phaseloop_cell), row
        assert NUMBER.match(asyncio_cell) or asyncio_cell == "-", row
        if asyncio_cell == "-":  # the Node-API and set_timeout rows are phaseloop's alone
            assert name.startswith(("set_", "next_tick", "queue_microtask", "latency_set_timeout")), row
        seen.add(name)
    assert seen == expected

    runs = data["runs"]
    assert runs and not [run for run in runs if "error" in run]
    for run in runs:
        assert run["metrics"] and all(isinstance(v, float) for v in run["metrics"].values()), run
        assert run["python"] == platform.python_version()
        assert run["phaseloop_version"]
    assert data["environment"]["loops"]["phaseloop"]["version"]

    # --render prints the saved run's heading and table again, as the run printed them.
    rendered = subprocess.run(
        [sys.executable, str(RUN), "--render", str(tmp_path / "smoke.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == proc.stdout


@pytest.mark.timeout(60)
def test_render_refuses_a_file_that_is_not_a_saved_run(tmp_path: Path) -> None:
    saved = tmp_path / "other.json"
    saved.write_text('{"medians": {}}')
    proc = subprocess.run(
        [sys.executable, str(RUN), "--render", str(saved)], capture_output=True, text=True, timeout=50
    )
    assert proc.returncode != 0
    assert "is not a run.py --json file (KeyError: 'environment')" in proc.stderr


# The diagnostics beside the suite (docs/performance.md quotes them), on tiny sizes, with
# the pattern of the line each must print per loop; keyed by script and a mode's name.
DIAGNOSTICS = {
    "task_cost": (
        ["--depth", "2", "--rounds", "1", "--loops", "asyncio:new_event_loop,phaseloop:new_event_loop"],
        r"^phaseloop +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d  \d+/\d+/\d+$",
    ),
    "profile_round_trip": (
        ["-n", "50", "--size", "65536", "--top", "3"],
        r"^phaseloop:new_event_loop: server CPU \d+\.\d\d us/round trip unprofiled",
    ),
    "profile_round_trip --udp": (
        ["--udp", "-n", "50", "--top", "3"],
        r"^phaseloop:new_event_loop: server CPU \d+\.\d\d us/round trip unprofiled",
    ),
    "wake_path": (["--rounds", "1", "-n", "5"], r"^phaseloop +wake - deadline: p50 "),
    "read_sizes": (["-n", "20", "--rounds", "1"], r"^primed +65536 +65536 +\d+\.\d\d "),
    "timer_memory": (
        ["-n", "1000", "--loops", "asyncio:new_event_loop,phaseloop:new_event_loop"],
        r"^phaseloop:new_event_loop: \d+\.\d bytes per pending timer \(1000 timers\)$",
    ),
    "timer_churn": (["-n", "200"], r"^unref'd: \d+ queue entries, \d+ lists, \d+ KiB traced .* us/cycle$"),
    "tree_stages": (
        ["--depth", "2", "--rounds", "1", "--loops", "asyncio:new_event_loop,phaseloop:new_event_loop"],
        r"^phaseloop:new_event_loop +\d+ +-?\d+ +-?\d+ +\d+ +\d+ +\d+ +\d+$",
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", sorted(DIAGNOSTICS))
def test_diagnostic_script_runs(script: str) -> None:
    args, pattern = DIAGNOSTICS[script]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{script.split()[0]}.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(pattern, proc.stdout, re.MULTILINE), proc.stdout
