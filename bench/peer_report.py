"""The table and the plot ``bench/peers.py`` makes from its JSON results (never typed in by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.machine import replace_between_markers

__all__ = ["MARKER", "markdown_table", "write_plot", "write_table"]

MARKER = "bench/peers.py"  # the table sits between <!-- bench/peers.py:start --> and ...:end -->


def _label(row: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in row["versions"].items() if version)
    return f"{row['label']} ({versions})" if versions else row["label"]


def markdown_table(results: dict[str, Any]) -> str:
    """One row per system, then the machine, the data and the command that made it."""
    rows = results["systems"]
    machine = results["machine"]
    fathom = next((row for row in rows if row["system"] == "fathom"), None)
    lines = [
        "| system | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms | p50 vs fathom | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: -r["ndcg@10"]):
        ratio = f"{row['p50_ms'] / fathom['p50_ms']:.2g}x" if fathom and fathom["p50_ms"] > 0 else "-"
        lines.append(
            f"| {_label(row)} | {row['ndcg@10']:.3f} | {row['recall@100']:.3f} | {row['mrr@10']:.3f} "
            f"| {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {ratio} | {row['peak_rss_mb']:.0f} |"
        )
    load = f"{machine['load_average_start'][0]} at start, {machine.get('load_average_end', ['?'])[0]} at end"
    gpu = f"GPU {machine['gpu']} present but not used" if machine.get("gpu") else "no GPU"
    busiest = max(machine["load_average_start"][0], machine.get("load_average_end", [0.0])[0])
    if busiest > machine["cores"]:
        lines += [
            "",
            f"**Busy machine:** the 1-minute load average was up to {busiest} on {machine['cores']} "
            "cores, so absolute times are inflated; compare systems within this run, and rerun on a "
            "quiet machine.",
        ]
    if not results.get("complete", True):
        lines += ["", "**Run incomplete:** it was stopped before every selected system had run."]
    lines += [
        "",
        f"{results['dataset']} {results['split']}, {results['queries']} of {results['queries_in_split']} "
        f"queries; model {results['model']}; corpus embeddings {results['corpus_embeddings']}. "
        f"Latency: {results['latency']}.",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['ram_gib']} GiB RAM, {gpu}, "
        f"{machine['torch_threads']} torch threads; 1-minute load average {load}. "
        f"Run {results['date']}: `{results['command']}`.",
    ]
    return "\n".join(lines)


def write_table(results: dict[str, Any], doc: Path) -> None:
    """Replace the table between the markers in ``doc`` (appending the markers if it has none)."""
    replace_between_markers(doc, MARKER, markdown_table(results))


def write_plot(results: dict[str, Any], png: Path) -> None:
    """nDCG@10 against p50 latency (log scale), a whisker out to p95, one labelled point per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    # Labels alternate above and below in quality order, so close points stay readable.
    for order, row in enumerate(sorted(results["systems"], key=lambda r: r["ndcg@10"])):
        colour = "tab:red" if row["system"] == "fathom" else "tab:blue"
        axes.plot([row["p50_ms"], row["p95_ms"]], [row["ndcg@10"]] * 2, color=colour, alpha=0.35, linewidth=2)
        axes.scatter([row["p50_ms"]], [row["ndcg@10"]], color=colour, s=60, zorder=3)
        axes.annotate(
            row["label"],
            (row["p50_ms"], row["ndcg@10"]),
            textcoords="offset points",
            xytext=(6, 6 if order % 2 else -12),
            fontsize=8,
        )
    axes.set_xscale("log")
    axes.set_xlabel("ms per query, p50 (line to p95), query embedding included — log scale")
    axes.set_ylabel("nDCG@10")
    machine = results["machine"]
    axes.set_title(
        f"{results['dataset']} {results['split']} ({results['queries']} queries), "
        f"{machine['cores']}-core CPU, no GPU used, {results['date'][:10]}",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png)
    plt.close(figure)
