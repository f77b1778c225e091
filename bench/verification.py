"""Verification of generated answers on the seed questions: groundedness, what it catches, what it costs.

    python bench/verification.py [--shared ../shared]

A scripted OpenAI-compatible server (fathom.llm.testing.EchoAndInvent, real HTTP
and SSE on 127.0.0.1) answers each seeds-qa dev question by echoing sentences of
the documents fathom sent and adding fabrications (an invented claim, a copied
sentence with changed figures, one with a swapped name). Reports how many echoes
verification keeps, how many fabrications pass, the groundedness of the answers,
and the time verification adds next to the extractive answer, in the same run.
Writes bench/results/verification.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fathom import Fathom
from fathom.answer.context import ContextChunk
from fathom.answer.verify import Verification, Verifier
from fathom.config import DEFAULT_EMBEDDER
from fathom.embed import create_embedder
from fathom.llm.testing import EchoAndInvent, ScriptedLLMServer, normalized

ROOT = Path(__file__).resolve().parents[1]
VERIFY_MS: list[float] = []
_original_verify = Verifier.verify


def _timed_verify(self: Verifier, answer: str, context: Sequence[ContextChunk]) -> Verification:
    started = time.perf_counter()
    try:
        return _original_verify(self, answer, context)
    finally:
        VERIFY_MS.append((time.perf_counter() - started) * 1000)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.shared / "data/seeds-qa/dev.jsonl").read_text().splitlines()]
    embedder = create_embedder(DEFAULT_EMBEDDER)
    Verifier.verify = _timed_verify  # type: ignore[method-assign]
    script = EchoAndInvent()
    with tempfile.TemporaryDirectory() as home, ScriptedLLMServer(script) as server:
        with Fathom(home=home, embedder=embedder) as fathom:
            fathom.ingest([args.shared / "corpus/seeds"])
            extractive_ms = []
            for row in rows:
                started = time.perf_counter()
                fathom.ask(row["question"])
                extractive_ms.append((time.perf_counter() - started) * 1000)
        llm_ms, answers = [], []
        settings = {"llm": "openai:scripted", "llm_base_url": server.url, "answer_cache_size": 0}
        with Fathom(home=home, embedder=embedder, **settings) as fathom:
            fathom.ask(rows[0]["question"])  # warm the connection
            VERIFY_MS.clear()
            script.echoed.clear()
            script.invented.clear()
            for row in rows:
                started = time.perf_counter()
                answers.append(fathom.ask(row["question"]))
                llm_ms.append((time.perf_counter() - started) * 1000)
    supported = [normalized(s.text) for a in answers for s in a.sentences if s.supported]
    grounded = [a.groundedness for a in answers if a.groundedness is not None]
    result = {
        "machine": {"cores": os.cpu_count(), "gpu": False},
        "questions": len(rows),
        "echoed_sentences": len(script.echoed),
        "echoes_kept": sum(1 for s in supported if s in script.echoed),
        "fabricated_sentences": len(script.invented),
        "fabrications_passed": sum(1 for s in supported if s in script.invented),
        "abstained": sum(1 for a in answers if a.abstained),
        "groundedness_mean": round(statistics.fmean(grounded), 3),
        "groundedness_median": round(statistics.median(grounded), 3),
        "verify_ms_p50": _p(VERIFY_MS, 0.5),
        "verify_ms_p95": _p(VERIFY_MS, 0.95),
        "ask_ms_p50_extractive": _p(extractive_ms, 0.5),
        "ask_ms_p50_llm_scripted": _p(llm_ms, 0.5),
    }
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "verification.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| figure | value |\n|---|---|")
    for key, value in result.items():
        if key != "machine":
            print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
