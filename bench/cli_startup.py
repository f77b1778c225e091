"""Cold start of the ``fathom`` command, before and after issue 17 (measured with hyperfine).

    python -m bench.cli_startup [--before ../main/src] [--runs 10] [--slow-runs 3] [--no-docs]

Each row is one command run end to end as a user runs it (a new Python process each time),
with the source tree of ``--before`` (e.g. a checkout of main) and with this tree, on the same
homes, in one run:

- ``fathom --help``;
- ``fathom status`` of a home holding 300 small Markdown files;
- ``fathom search`` on that home, embedded (the model loads in the process);
- ``fathom search`` through a running ``fathom serve`` of that home (``FATHOM_URL``; only this
  tree has the client, so the before row is the embedded search);
- ``fathom ingest`` of the same 300-file folder again (every file unchanged);
- ``fathom ask`` on an empty home.

Needs ``hyperfine`` (Debian package). Writes bench/results/cli_startup.json and .md, and the
table into docs/usage.md (between the ``bench/cli_startup.py`` markers) unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info, replace_between_markers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORDS = [
    *("harbour", "tide", "pilot", "anchor", "berth", "cargo", "crane", "dock", "quay", "ferry"),
    *("buoy", "vessel", "storm", "chart", "lighthouse", "keeper", "schedule", "permit", "mooring"),
    *("fee", "winter", "summer", "north", "south", "engine", "crew"),
]


def make_folder(folder: Path, files: int = 300) -> None:
    rng = random.Random(17)
    folder.mkdir(parents=True)
    for i in range(files):
        paragraphs = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(3))
        (folder / f"note{i:03d}.md").write_text(
            f"# Note {i}\n\n## Harbour\n\n{paragraphs}\n", encoding="utf-8"
        )


def fathom(src: Path, home: Path, *args: str, extra_env: dict[str, str] | None = None) -> str:
    """A shell command line that runs ``fathom ARGS`` from the tree ``src`` on ``home``."""
    env = {"PYTHONPATH": str(src), "FATHOM_HOME": str(home), **(extra_env or {})}
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} {shlex.quote(sys.executable)} -m fathom {shlex.join(args)} >/dev/null"


def hyperfine(commands: dict[str, str], runs: int, export: Path) -> dict[str, dict[str, float]]:
    """Seconds per named command: wall (median, mean, min, max) and CPU (mean user + system)."""
    argv = [
        "hyperfine",
        "--warmup",
        "1",
        "--runs",
        str(runs),
        "--export-json",
        str(export),
        "--style",
        "basic",
    ]
    for name, command in commands.items():
        argv += ["--command-name", name, command]
    subprocess.run(argv, check=True)
    results = json.loads(export.read_text())["results"]
    return {
        r["command"]: {
            "median_s": r["median"],
            "mean_s": r["mean"],
            "min_s": r["min"],
            "max_s": r["max"],
            "cpu_s": r["user"] + r["system"],
            "runs": len(r["times"]),
        }
        for r in results
    }


def wait_ready(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("fathom serve did not become ready")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(before: Path, runs: int, slow_runs: int) -> dict[str, Any]:
    after = ROOT / "src"
    work = Path(tempfile.mkdtemp(prefix="fathom-cli-bench-"))
    try:
        folder, home, empty = work / "notes", work / "home", work / "empty"
        make_folder(folder)
        subprocess.run(
            [
                "env",
                f"PYTHONPATH={after}",
                f"FATHOM_HOME={home}",
                sys.executable,
                "-m",
                "fathom",
                "ingest",
                str(folder),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        key = json.loads(
            subprocess.run(
                [sys.executable, "-m", "fathom", "keys", "create", "--tenant", "default", "--json"],
                env={**os.environ, "PYTHONPATH": str(after), "FATHOM_HOME": str(home)},
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )["key"]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "fathom", "serve", "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(after), "FATHOM_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url)
            remote = {"FATHOM_URL": url, "FATHOM_API_KEY": key}
            query = ("search", "harbour mooring fee in winter")
            fast = {
                "before: --help": fathom(before, empty, "--help"),
                "after: --help": fathom(after, empty, "--help"),
                "before: status (300 files)": fathom(before, home, "status"),
                "after: status (300 files)": fathom(after, home, "status"),
                "after: search via fathom serve": fathom(after, empty, *query, extra_env=remote),
                "after: ask, empty home": fathom(after, empty, "ask", "when does the ferry leave?")
                + " 2>/dev/null || true",
                "after: re-ingest 300 unchanged files": fathom(
                    after, home, "ingest", str(folder), "--no-progress"
                ),
            }
            slow = {
                "before: search, embedded": fathom(before, home, *query),
                "after: search, embedded": fathom(after, home, *query),
                "before: re-ingest 300 unchanged files": fathom(
                    before, home, "ingest", str(folder), "--no-progress"
                ),
                "before: ask, empty home": fathom(before, empty, "ask", "when does the ferry leave?"),
            }
            figures = hyperfine(fast, runs, work / "fast.json")
            figures.update(hyperfine(slow, slow_runs, work / "slow.json"))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "machine": machine_info(),
        "load": "under load: other jobs shared the 2 cores during the run",
        "loadavg_at_end": os.getloadavg(),
        "before": str(before),
        "commands": figures,
    }


# (row label, before command, after command)
ROWS = (
    ("`fathom --help`", "--help", "--help"),
    ("`fathom status`, 300 documents", "status (300 files)", "status (300 files)"),
    ("`fathom search`, embedded (loads the model)", "search, embedded", "search, embedded"),
    ("`fathom search` with `FATHOM_URL` (via `fathom serve`)", "search, embedded", "search via fathom serve"),
    (
        "`fathom ingest` of 300 unchanged files",
        "re-ingest 300 unchanged files",
        "re-ingest 300 unchanged files",
    ),
    ("`fathom ask` on an empty home", "ask, empty home", "ask, empty home"),
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(report: dict[str, Any]) -> str:
    figures = report["commands"]
    lines = [
        "| command | before: wall p50 | after: wall p50 | after: wall min–max | before: CPU | after: CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, before_name, after_name in ROWS:
        b, a = figures[f"before: {before_name}"], figures[f"after: {after_name}"]
        lines.append(
            f"| {label} | {_ms(b['median_s'])} | {_ms(a['median_s'])} "
            f"| {_ms(a['min_s'])}–{_ms(a['max_s'])} | {_ms(b['cpu_s'])} | {_ms(a['cpu_s'])} |"
        )
    machine = report["machine"]
    lines += [
        "",
        f"Under load (load average {report['loadavg_at_end'][0]:.1f} on {machine['cores']} cores at the end: "
        f"other jobs were running), {machine['cpu']}, Python {machine['python']}. "
        "Wall p50 is hyperfine's median of the runs; CPU is the mean user + system time of the "
        "process (less sensitive to the load than wall time). "
        "The before figures of the `FATHOM_URL` row are main's embedded search (main has no client). "
        "Reproduce: `python -m bench.cli_startup --before PATH/TO/main/src`.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--before", type=Path, default=ROOT.parent / "main" / "src", help="The tree to compare with."
    )
    parser.add_argument("--runs", type=int, default=10, help="Runs of the fast commands.")
    parser.add_argument("--slow-runs", type=int, default=3, help="Runs of the commands that load the model.")
    parser.add_argument("--no-docs", action="store_true", help="Do not update docs/usage.md.")
    parser.add_argument(
        "--table-only", action="store_true", help="Rewrite the tables from bench/results/cli_startup.json."
    )
    args = parser.parse_args()
    if args.table_only:
        report = json.loads((RESULTS / "cli_startup.json").read_text(encoding="utf-8"))
    else:
        if shutil.which("hyperfine") is None:
            sys.exit("hyperfine is not installed (apt-get install hyperfine)")
        report = run(args.before.resolve(), args.runs, args.slow_runs)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "cli_startup.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = table(report)
    (RESULTS / "cli_startup.md").write_text(markdown + "\n", encoding="utf-8")
    if not args.no_docs:
        replace_between_markers(ROOT / "docs" / "usage.md", "bench/cli_startup.py", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
