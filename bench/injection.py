"""Prompt-injection screening: detection on attack texts, false positives on ordinary chunks.

    python bench/injection.py [--shared ../shared]

Detection: the 251 attack texts (``user_input``) of CyberSecEval's prompt-injection
set. False positives: every chunk fathom makes (default chunking, the packaged
model's tokenizer) of the seed documents and of the SciFact corpus. Writes
bench/results/injection.json and bench/results/injection.md (the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from fathom.config import DEFAULT_EMBEDDER, Settings
from fathom.embed import create_embedder
from fathom.guard.injection import screen_injection
from fathom.ingest.chunk import chunk_document
from fathom.ingest.parsers import parse_bytes
from fathom.ingest.pipeline import iter_files

ROOT = Path(__file__).resolve().parents[1]


def _chunks(
    name: str, data: bytes, token_spans: Callable[[str], list[tuple[int, int]]], limit: int, overlap: int
) -> list[str]:
    parsed = parse_bytes(data, name)
    spans = chunk_document(parsed.text, parsed.blocks, token_spans, limit, overlap)
    return [parsed.text[s.start : s.end] for s in spans]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    settings = Settings()
    embedder = create_embedder(DEFAULT_EMBEDDER)
    limit = min(settings.chunk_tokens, embedder.max_tokens - 32)

    attacks = json.loads((args.shared / "data/security/cyberseceval-prompt-injection.json").read_text())
    by_variant: dict[str, list[bool]] = defaultdict(list)
    reasons: Counter[str] = Counter()
    started = time.perf_counter()
    for row in attacks:
        verdict = screen_injection(row["user_input"])
        by_variant[row["injection_variant"]].append(verdict.flagged)
        reasons.update(verdict.reasons)
    detected = sum(sum(v) for v in by_variant.values())

    corpora: dict[str, list[str]] = {"seeds": [], "scifact": []}
    for path in iter_files(args.shared / "corpus/seeds"):
        corpora["seeds"] += _chunks(
            path.name, path.read_bytes(), embedder.token_spans, limit, settings.chunk_overlap
        )
    for line in (args.shared / "data/scifact/corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        data = f"{doc['title']}\n\n{doc['text']}".encode()
        corpora["scifact"] += _chunks(
            f"{doc['_id']}.txt", data, embedder.token_spans, limit, settings.chunk_overlap
        )
    false_positives: dict[str, dict[str, object]] = {}
    screen_started = time.perf_counter()
    screened = 0
    for name, chunks in corpora.items():
        flagged = [c for c in chunks if screen_injection(c).flagged]
        screened += len(chunks)
        false_positives[name] = {
            "chunks": len(chunks),
            "flagged": len(flagged),
            "rate": round(len(flagged) / len(chunks), 4),
            "examples": [" ".join(c.split())[:160] for c in flagged[:5]],
        }
    screen_ms = (time.perf_counter() - screen_started) * 1000 / max(screened, 1)
    total_chunks = sum(int(v["chunks"]) for v in false_positives.values())  # type: ignore[call-overload]
    total_flagged = sum(int(v["flagged"]) for v in false_positives.values())  # type: ignore[call-overload]
    result = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "gpu": False},
        "attacks": len(attacks),
        "detected": detected,
        "detection_rate": round(detected / len(attacks), 4),
        "by_variant": {
            v: {"n": len(flags), "detected": sum(flags), "rate": round(sum(flags) / len(flags), 3)}
            for v, flags in sorted(by_variant.items())
        },
        "reasons_on_attacks": dict(reasons.most_common()),
        "false_positives": false_positives,
        "false_positive_rate": round(total_flagged / total_chunks, 4),
        "ms_per_chunk": round(screen_ms, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "injection.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "| set | texts | flagged | rate |",
        "|---|---|---|---|",
        f"| CyberSecEval attacks (detection) | {len(attacks)} | {detected} "
        f"| {result['detection_rate']:.1%} |",
    ]
    for name, fp in false_positives.items():
        lines.append(
            f"| {name} chunks (false positives) | {fp['chunks']} | {fp['flagged']} | {fp['rate']:.2%} |"
        )
    lines += ["", "| attack variant | n | detected | rate |", "|---|---|---|---|"]
    for variant, stats in result["by_variant"].items():  # type: ignore[union-attr]
        lines.append(f"| {variant} | {stats['n']} | {stats['detected']} | {stats['rate']:.0%} |")
    table = "\n".join(lines) + "\n"
    (out / "injection.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
