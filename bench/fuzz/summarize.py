"""Summarise fuzzing logs: executions, seconds, coverage and findings per harness.

    python bench/fuzz/summarize.py [--out bench/fuzz/out] [--notes "pdf=fixed in ..."]

Reads ``OUT/FORMAT/log.txt`` (and earlier runs kept as ``OUT/run1/FORMAT.log``), writes
bench/results/fuzz.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_STATUS = re.compile(rb"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", re.MULTILINE)
_DONE = re.compile(rb"Done (\d+) runs in (\d+) second")
_EXCEPTION = re.compile(rb"=== Uncaught Python exception: ===\n([^\n]+)")


def summarize(log: Path) -> dict[str, object]:
    data = log.read_bytes()
    statuses = _STATUS.findall(data)
    done = _DONE.search(data)
    executions = int(statuses[-1][0]) if statuses else 0
    if done:
        executions = int(done.group(1))
    return {
        "executions": executions,
        "seconds": int(done.group(2)) if done else None,
        "coverage": int(statuses[-1][1]) if statuses else 0,
        "features": int(statuses[-1][2]) if statuses else 0,
        "findings": sorted({m.decode(errors="replace") for m in _EXCEPTION.findall(data)}),
        "completed": bool(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "fuzz" / "out")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, object]]] = {}
    for earlier in sorted((args.out / "run1").glob("*.log")):
        runs.setdefault(earlier.stem, []).append({"run": "first", **summarize(earlier)})
    for log in sorted(args.out.glob("*/log.txt")):
        if log.parent.name != "run1":
            runs.setdefault(log.parent.name, []).append({"run": "last", **summarize(log)})
    out = ROOT / "bench" / "results" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runs, indent=2) + "\n")
    print("| harness | run | executions | seconds | coverage | findings |")
    print("|---|---|---|---|---|---|")
    for name, entries in sorted(runs.items()):
        for entry in entries:
            findings = "; ".join(entry["findings"]) or "none"  # type: ignore[arg-type]
            seconds = entry["seconds"] if entry["seconds"] is not None else "stopped at finding"
            print(
                f"| {name} | {entry['run']} | {entry['executions']} | {seconds} | {entry['coverage']} "
                f"| {findings} |"
            )


if __name__ == "__main__":
    main()
