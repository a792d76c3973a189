"""Turn stdlib_suite.py --json results into the tables of docs/conformance.md.

python compat/conformance_report.py results-3.11.json results-3.12.json ...
"""

from __future__ import annotations

import json
import sys
from typing import Any

from stdlib_suite import EXPLAINED, LOOPS

NAMES = {spec: name for name, spec in LOOPS.items()}


def cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    if "missing" in entry:
        return "n/a"
    if "crashed" in entry:
        return f"timed out ({entry['seconds']:.0f}s)"
    return (
        f"{entry['passed']}/{entry['failed']}/{entry['errors']}/{entry['skipped']} ({entry['seconds']:.0f}s)"
    )


def report(path: str) -> str:
    with open(path) as fh:
        data = json.load(fh)
    results = data["results"]
    loops = [spec for spec in LOOPS.values() if any(r["loop"] == spec for r in results)]
    modules = sorted({r["module"] for r in results})
    lines = [
        f"### Python {data['python']}",
        "",
        "passed/failed/errors/skipped (wall time) per module",
        "",
        "| module | " + " | ".join(NAMES[s] for s in loops) + " |",
        "|---|" + "---|" * len(loops),
    ]
    for module in modules:
        row = [
            cell(next((r for r in results if r["module"] == module and r["loop"] == s), None)) for s in loops
        ]
        lines.append(f"| {module} | " + " | ".join(row) + " |")
    totals = []
    for spec in loops:
        rows = [r for r in results if r["loop"] == spec and "passed" in r]
        t = {k: sum(r[k] for r in rows) for k in ("passed", "failed", "errors", "skipped")}
        totals.append(f"**{t['passed']}/{t['failed']}/{t['errors']}/{t['skipped']}**")
    lines.append("| **total** | " + " | ".join(totals) + " |")
    failures = sorted(
        {
            t.removeprefix("test.test_asyncio.")
            for r in results
            if r["loop"] == LOOPS["phaseloop"]
            for t in r.get("failures", [])
        }
    )
    if failures:
        lines += ["", "phaseloop's failures:", ""]
        for test in failures:
            reason = EXPLAINED.get(test) or "**not explained: a bug to fix**"
            lines.append(f"- `{test}` — {reason}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print("\n".join(report(path) for path in sys.argv[1:]))
