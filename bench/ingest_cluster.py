"""Ingest throughput: plain ingest next to `--cluster ray` on a 1-node and a 2-node Ray cluster.

    python bench/ingest_cluster.py [--scifact-docs 1000] [--quiet-machine]

Each mode runs the CLI as a user does (`fathom ingest --json DIR`, with `--cluster ray` and
RAY_ADDRESS for the cluster modes) into a fresh home, on the same folder of SciFact abstracts
(one file per document: title, blank line, abstract). The time is the command's wall time:
start-up, model loading (once in the plain process; once per embedding actor and per parse
worker on the cluster), parse, chunk, embed, commit and index catch-up. The clusters are real
`ray start` nodes on loopback addresses of this machine (fathom.testing.ray_cluster), started
before the clock starts; with 2 nodes on one machine both share its cores, so the 2-node figure
measures Ray's overhead and fault tolerance here, not a speed-up (that needs more machines).

Figures are labelled "under load" unless --quiet-machine says nothing else ran.
Writes bench/results/ingest_cluster.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _scifact_folder(corpus: Path, target: Path, limit: int) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with corpus.open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if i >= limit:
                break
            row = json.loads(line)
            (target / f"{row['_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}\n", encoding="utf-8")
    return target


def _ingest(folder: Path, home: Path, env: Mapping[str, str], cluster: bool) -> dict[str, float]:
    full = {k: v for k, v in env.items() if not k.startswith("FATHOM_")}
    full["FATHOM_HOME"] = str(home)
    full["PYTHONPATH"] = str(ROOT / "src")
    args = [sys.executable, "-m", "fathom", "ingest", "--json", *(["--cluster", "ray"] if cluster else [])]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run(
        [*args, str(folder)], env=full, capture_output=True, text=True, timeout=3600, check=False
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ingest failed ({result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    chunks = sum(int(f.get("chunks") or 0) for f in report["files"])
    return {
        "documents": float(report["summary"]["added"]),
        "chunks": float(chunks),
        "seconds": seconds,
        "chunks_per_s": chunks / seconds,
        "load_average_1m_before": load_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scifact", type=Path, default=SHARED / "data" / "scifact" / "corpus.jsonl")
    parser.add_argument("--scifact-docs", type=int, default=1000)
    parser.add_argument("--node-cpus", type=int, default=2, help="CPUs each Ray node offers.")
    parser.add_argument(
        "--quiet-machine", action="store_true", help="Nothing else ran: label the figures quiet."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest_cluster.json")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from fathom.testing.ray_cluster import loopback_cluster

    results: dict[str, dict[str, float]] = {}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with tempfile.TemporaryDirectory(prefix="fathom-bench-") as scratch:
        folder = _scifact_folder(args.scifact, Path(scratch) / "scifact", args.scifact_docs)
        results["plain"] = _ingest(folder, Path(scratch) / "plain", env, cluster=False)
        for nodes in (1, 2):
            workers = (args.node_cpus,) * (nodes - 1)
            with loopback_cluster(args.node_cpus, workers) as cluster:
                home = Path(scratch) / f"ray{nodes}"
                results[f"ray_{nodes}_node"] = _ingest(folder, home, cluster.env, cluster=True)
    plain = results["plain"]["chunks_per_s"]
    for row in results.values():
        row["vs_plain"] = row["chunks_per_s"] / plain
    machine = "quiet" if args.quiet_machine else "under load (other work shared the cores)"
    payload: dict[str, Any] = {
        "benchmark": "ingest_cluster",
        "command": "python bench/ingest_cluster.py " + " ".join(sys.argv[1:]),
        "dataset": f"SciFact corpus, first {args.scifact_docs} abstracts, one file each",
        "machine": machine,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "node_cpus": args.node_cpus,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"Ingest of {payload['dataset']} — {os.cpu_count()} CPUs, machine {machine}\n")
    print("| mode | documents | chunks | seconds | chunks/s | vs plain | load avg before |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, row in results.items():
        print(
            f"| {mode} | {row['documents']:.0f} | {row['chunks']:.0f} | {row['seconds']:.1f} | "
            f"{row['chunks_per_s']:.1f} | {row['vs_plain']:.2f} | {row['load_average_1m_before']:.1f} |"
        )


if __name__ == "__main__":
    main()
