"""Query transforms (rewrite, multi-query, HyDE): quality with a real model, fathom's own overhead here.

    python bench/query_transforms.py quality  [--beir ../shared/data/scifact] [--split test]
                                              [--limit-queries N]
    python bench/query_transforms.py overhead [--beir ../shared/data/scifact] [--queries 100]

``quality`` runs ``fathom eval retrieval`` once per transform (none, rewrite, multi_query,
hyde) against the same eval home, with the model that ``FATHOM_LLM`` and
``FATHOM_LLM_BASE_URL`` (and ``FATHOM_LLM_API_KEY`` if needed) configure, e.g. Ollama at
``http://localhost:11434/v1``, or a local model with ``FATHOM_LLM=gguf:gemma3-270m`` (the gguf
extra). Without a configured model it says so and measures nothing: a scripted server cannot
tell whether a transform helps. ``--limit-queries N`` scores only the first N judged queries of
the split (for slow models; the corpus and eval home stay the same). Writes
bench/results/query_transforms.json and .md.

``overhead`` measures what each transform path costs fathom itself: a local scripted
OpenAI-compatible server (real HTTP and SSE on 127.0.0.1) answers every transform at once
with text of realistic length, so the figures are the round trip through the provider
client plus the extra embeddings, searches and fusion, never a model's time. It runs each
transform twice over the same queries: once through the model ("miss") and once from the
transform cache ("hit", retrieval work only). Writes bench/results/query_transforms_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fathom import Fathom
from fathom.config import DEFAULT_EMBEDDER, load_settings
from fathom.embed import create_embedder
from fathom.eval.beir import load_beir
from fathom.eval.retrieval import default_eval_home, evaluate_retrieval, open_eval_home
from fathom.llm.testing import Reply, ScriptedLLMServer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# Each run: a name, the query_transform setting, and any other settings it needs.
TRANSFORMS: dict[str, dict[str, Any]] = {
    "none": {"query_transform": "none"},
    "rewrite": {"query_transform": "rewrite"},
    "multi_query": {"query_transform": "multi_query"},
    "hyde": {"query_transform": "hyde"},
    "hyde_question_and_passage": {
        "query_transform": "hyde",
        "query_transform_hyde_lexical": "question_and_passage",
    },
}
# About the length of a HyDE passage a small model writes (80-100 words).
_FILLER = (
    "Studies of this question report measurable effects in controlled trials and cohort data, "
    "with the size of the effect depending on dose, duration and the population studied. "
    "Mechanistic work links the observation to changes in gene expression, signalling pathways "
    "and cell behaviour, and reviews note that results are consistent across independent groups."
)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "load_average": [round(v, 1) for v in os.getloadavg()]}


def quality(args: argparse.Namespace) -> int:
    settings = load_settings(args.eval_home)
    if settings.llm == "extractive":
        print(
            "query_transforms quality: skipped, no LLM is configured. Set FATHOM_LLM=openai:MODEL and "
            "FATHOM_LLM_BASE_URL (e.g. http://localhost:11434/v1 for Ollama, http://HOST:8000/v1 for "
            "vLLM), or FATHOM_LLM=gguf:gemma3-270m with the gguf extra; nothing was measured.",
            file=sys.stderr,
        )
        return 0
    beir = _first_queries(args.beir, args.split, args.limit_queries) if args.limit_queries else args.beir
    rows: list[dict[str, Any]] = []
    for transform in args.transforms:
        report = evaluate_retrieval(
            beir,
            split=args.split,
            home=args.eval_home,
            query_transform_cache_size=0,
            **TRANSFORMS[transform],
        )
        row = {"run": transform, **report.to_dict()}
        rows.append(row)
        print(
            f"{transform:12s} nDCG@10 {row['ndcg@10']:.4f}  R@100 {row['recall@100']:.4f}  "
            f"p50 {row['p50_ms']:.0f} ms  fallbacks {row['transform_fallbacks']}",
            file=sys.stderr,
        )
    result = {
        "machine": _machine(),
        "llm": settings.llm,
        "llm_base_url": settings.llm_base_url,
        "limit_queries": args.limit_queries,
        "runs": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "query_transforms.json").write_text(json.dumps(result, indent=2) + "\n")
    where = "in-process (llama.cpp)" if settings.llm.startswith("gguf:") else f"at `{settings.llm_base_url}`"
    limit = f", first {args.limit_queries} judged queries" if args.limit_queries else ""
    lines = [
        f"Model `{settings.llm}` {where}, {args.beir.name} {args.split}{limit}.",
        "",
        "| transform | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms | fell back |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fell_back = sum(row["transform_fallbacks"].values())
        lines.append(
            f"| {row['run']} | {row['ndcg@10']:.4f} | {row['recall@100']:.4f} | "
            f"{row['mrr@10']:.4f} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {fell_back} |"
        )
    (RESULTS / "query_transforms.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _first_queries(root: Path, split: str, limit: int) -> Path:
    """A BEIR folder of the same name whose ``split`` judges only its first ``limit`` queries.

    The corpus and queries are linked, not copied, so the eval home (found by folder name and
    corpus hash) is the one the full split uses.
    """
    folder = Path(tempfile.mkdtemp(prefix="fathom-qt-")) / root.resolve().name
    (folder / "qrels").mkdir(parents=True)
    for name in os.listdir(root):
        if name.endswith(".jsonl"):
            (folder / name).symlink_to((root / name).resolve())
    kept: list[str] = []
    seen: set[str] = set()
    for line in (root / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
        query_id = line.split("\t", 1)[0]
        if query_id not in seen and query_id != "query-id":
            if len(seen) == limit:
                break
            seen.add(query_id)
        kept.append(line)
    (folder / "qrels" / f"{split}.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return folder


def _scripted(request: dict[str, Any]) -> Reply:
    """Instant replies shaped like each transform's: a query, three paraphrases, a passage."""
    system = request["messages"][0]["content"]
    question = request["messages"][-1]["content"].removeprefix("Question: ")
    words = question.rstrip("?").split()
    if system.startswith("You turn"):
        return Reply(text=" ".join(words), pieces=4)
    if system.startswith("You write") and "search queries" in system:
        variants = [
            "What is known about " + " ".join(words[1:]),
            " ".join(reversed(words)),
            " ".join(words[: max(3, len(words) // 2)]) + " evidence",
        ]
        return Reply(text="\n".join(variants), pieces=4)
    return Reply(text=f"{question} {_FILLER}", pieces=4)


def _forget_query_embeddings(embedder: Any) -> None:
    """Empty the embedder's query cache so every timed search embeds its queries afresh."""
    cache = getattr(embedder, "_query_cache", None)
    if cache is not None:
        cache.clear()


def overhead(args: argparse.Namespace) -> int:
    dataset = load_beir(args.beir, args.split)
    queries = list(dataset.queries.values())[: args.queries]
    embedder = create_embedder(DEFAULT_EMBEDDER, query_precision="int8")
    home = Path(args.eval_home) if args.eval_home else default_eval_home(dataset.root)
    open_eval_home(dataset.root, home, embedder=embedder).close()
    names = list(args.transforms)
    latencies: dict[tuple[str, str], list[float]] = {(n, p): [] for n in names for p in ("miss", "hit")}
    stages: dict[tuple[str, str], dict[str, list[float]]] = {key: {} for key in latencies}
    current: list[tuple[str, str]] = [(names[0], "miss")]

    def observe(stage: str, seconds: float) -> None:
        stages[current[0]].setdefault(stage, []).append(seconds * 1000)

    with ScriptedLLMServer(_scripted) as server:
        opened: dict[str, Fathom] = {}
        try:
            for name in names:
                settings = {
                    "llm": "openai:scripted",
                    "llm_base_url": server.url,
                    "query_transform_cache_size": 4096,
                    **TRANSFORMS[name],
                }
                fathom = Fathom(home=home, embedder=embedder, **settings)
                opened[name] = fathom
                for number in range(3):  # warm-up: connection, index files, code paths
                    fathom.search_traced(f"warm up question number {number} about cells", k=10)
                fathom.stage_observer = observe
            # Every query runs through every transform in turn (order rotated), first asking the
            # scripted model ("miss"), then again from the transform cache ("hit"), so load on
            # this shared machine falls on all of them alike.
            for number, query in enumerate(queries):
                shift = number % len(names)
                for label in ("miss", "hit"):
                    for name in names[shift:] + names[:shift]:
                        current[0] = (name, label)
                        _forget_query_embeddings(embedder)
                        started = time.perf_counter()
                        found = opened[name].search_traced(query, k=10)
                        latencies[(name, label)].append((time.perf_counter() - started) * 1000)
                        if name != "none":
                            assert found.transform is not None and found.transform.applied
                            assert found.transform.cached == (label == "hit")
        finally:
            for fathom in opened.values():
                fathom.close()
    runs: dict[str, Any] = {}
    for name in names:
        runs[name] = {
            label: {
                "p50_ms": _p(latencies[(name, label)], 0.5),
                "p95_ms": _p(latencies[(name, label)], 0.95),
                "mean_ms": round(statistics.fmean(latencies[(name, label)]), 2),
                "stages_p50_ms": {
                    stage: _p(values, 0.5) for stage, values in sorted(stages[(name, label)].items())
                },
            }
            for label in ("miss", "hit")
        }
        print(name, json.dumps(runs[name]), file=sys.stderr)
    # The median over queries of (this transform's latency - no transform's), same query, same pass.
    paired = {
        name: {
            label: round(
                statistics.median(
                    a - b for a, b in zip(latencies[(name, label)], latencies[("none", label)], strict=True)
                ),
                2,
            )
            for label in ("miss", "hit")
        }
        for name in names
        if "none" in names
    }
    result: dict[str, Any] = {
        "what": "fathom's own cost per transform path: a scripted local server answers at once, so no "
        "model time is included; 'miss' goes through the provider client, 'hit' comes from the "
        "transform cache (retrieval work only). Query embeddings are recomputed for every search. "
        "Not a quality measurement.",
        "machine": _machine(),
        "dataset": f"{dataset.root.name} {args.split}",
        "queries": len(queries),
        "k": 10,
        "runs": runs,
        "added_ms_vs_none_median_paired": paired,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "query_transforms_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(paired, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("mode", choices=("quality", "overhead"))
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--eval-home", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=100, help="overhead: queries of the split to time")
    parser.add_argument("--transforms", default=",".join(TRANSFORMS), help="comma-separated runs")
    parser.add_argument(
        "--limit-queries", type=int, default=0, help="quality: score only the first N judged queries"
    )
    args = parser.parse_args()
    args.transforms = [t.strip() for t in args.transforms.split(",") if t.strip()]
    unknown = [t for t in args.transforms if t not in TRANSFORMS]
    if unknown:
        parser.error(f"unknown transforms {unknown}; choose from {list(TRANSFORMS)}")
    return quality(args) if args.mode == "quality" else overhead(args)


if __name__ == "__main__":
    raise SystemExit(main())
