"""Prompt-injection screening: detection on attack texts, false positives on ordinary chunks and questions.

    python bench/injection.py [--shared ../shared]

Detection: the 251 attack texts (``user_input``) of CyberSecEval's prompt-injection
set. False positives: every chunk fathom makes (default chunking, the packaged
model's tokenizer) of the seed documents and of the SciFact corpus, and ordinary
questions (SciFact claims, the seeds QA questions), since questions are screened too.

Every set is cut into a *dev* half, the only data the screen's patterns and
threshold were tuned on, and a *held-out* half, reported beside it so that
tuning to the test set would show. Attacks are halved within each injection
variant (so every variant is on both sides) by a stable hash of the prompt id;
seed chunks by a hash of file and chunk number; SciFact chunks by a hash of the
document id (a document's chunks stay together); SciFact train claims are dev,
SciFact test claims and the seeds QA questions held out. Writes
bench/results/injection.json and bench/results/injection.md (the tables).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fathom.guard.injection import screen_injection

ROOT = Path(__file__).resolve().parents[1]
DEV, HELD_OUT = "dev", "held-out"
SPLITS = (DEV, HELD_OUT)
ATTACKS = "security/cyberseceval-prompt-injection.json"


@dataclass(frozen=True, slots=True)
class Sample:
    """One screened text: its set (``attacks``, ``seeds``, ``scifact``, ``queries``), half and text."""

    group: str
    split: str
    text: str
    variant: str = ""


def _hash(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16)


def stable_half(key: str) -> str:
    """``dev`` or ``held-out`` for ``key``, the same on every machine and run."""
    return DEV if _hash(key) % 2 == 0 else HELD_OUT


def load_attacks(shared: Path) -> list[Sample]:
    """The attack texts, halved within each variant in the order of a hash of their prompt ids."""
    rows = json.loads((shared / "data" / ATTACKS).read_text())
    by_variant: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        by_variant[str(row["injection_variant"])].append(row)
    samples: list[Sample] = []
    for variant, members in sorted(by_variant.items()):
        members.sort(key=lambda row: _hash(f"cyberseceval:{row['prompt_id']}"))
        for position, row in enumerate(members):
            split = DEV if position % 2 == 0 else HELD_OUT
            samples.append(Sample("attacks", split, str(row["user_input"]), variant))
    return samples


def load_chunks(shared: Path) -> list[Sample]:
    """Every chunk of the seed documents and the SciFact corpus, as fathom's default ingest cuts them."""
    from fathom.config import DEFAULT_EMBEDDER, Settings
    from fathom.embed import create_embedder
    from fathom.ingest.chunk import chunk_document
    from fathom.ingest.parsers import parse_bytes
    from fathom.ingest.pipeline import iter_files

    settings = Settings()
    embedder = create_embedder(DEFAULT_EMBEDDER)
    limit = min(settings.chunk_tokens, embedder.max_tokens - 32)

    def chunks(name: str, data: bytes, token_spans: Callable[[str], list[tuple[int, int]]]) -> list[str]:
        parsed = parse_bytes(data, name)
        spans = chunk_document(parsed.text, parsed.blocks, token_spans, limit, settings.chunk_overlap)
        return [parsed.text[s.start : s.end] for s in spans]

    samples: list[Sample] = []
    for path in iter_files(shared / "corpus/seeds"):
        for number, text in enumerate(chunks(path.name, path.read_bytes(), embedder.token_spans)):
            samples.append(Sample("seeds", stable_half(f"seeds:{path.name}#{number}"), text))
    for line in (shared / "data/scifact/corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        data = f"{doc['title']}\n\n{doc['text']}".encode()
        split = stable_half(f"scifact:{doc['_id']}")
        samples += [
            Sample("scifact", split, text) for text in chunks(f"{doc['_id']}.txt", data, embedder.token_spans)
        ]
    return samples


def load_queries(shared: Path) -> list[Sample]:
    """Ordinary questions: SciFact train claims (dev); SciFact test claims, seeds QA questions (held-out)."""
    samples: list[Sample] = []
    for name, split in (("queries_train.jsonl", DEV), ("queries.jsonl", HELD_OUT)):
        for line in (shared / "data/scifact" / name).read_text().splitlines():
            samples.append(Sample("queries", split, json.loads(line)["text"]))
    for line in (shared / "data/seeds-qa/dev.jsonl").read_text().splitlines():
        samples.append(Sample("queries", HELD_OUT, json.loads(line)["question"]))
    return samples


def tally(
    samples: Iterable[Sample], flagged: Callable[[str], bool]
) -> dict[str, dict[str, dict[str, float]]]:
    """``{group: {split or "all": {"n", "flagged", "rate"}}}`` for the samples."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for sample in samples:
        hit = int(flagged(sample.text))
        for split in (sample.split, "all"):
            counts[sample.group][split][0] += 1
            counts[sample.group][split][1] += hit
    return {
        group: {
            split: {"n": n, "flagged": k, "rate": round(k / n, 4)}
            for split in (*SPLITS, "all")
            for n, k in [by_split[split]]
            if n
        }
        for group, by_split in counts.items()
    }


def _cell(stats: dict[str, float], digits: int) -> str:
    return f"{int(stats['flagged'])}/{int(stats['n'])} = {stats['rate']:.{digits}%}"


def markdown(result: dict[str, object]) -> str:
    """The tables of bench/results/injection.md."""
    sets = result["sets"]
    assert isinstance(sets, dict)
    labels = {
        "attacks": "attacks detected (CyberSecEval)",
        "benign_chunks": "false positives, all chunks",
        "seeds": "false positives, seeds chunks",
        "scifact": "false positives, SciFact chunks",
        "queries": "false positives, ordinary questions",
    }
    lines = ["| set | dev | held-out | all |", "|---|---|---|---|"]
    for group, label in labels.items():
        digits = 1 if group == "attacks" else 2
        row = sets[group]
        lines.append(f"| {label} | " + " | ".join(_cell(row[s], digits) for s in (*SPLITS, "all")) + " |")
    lines += ["", "| attack variant | dev | held-out | all |", "|---|---|---|---|"]
    by_variant = result["by_variant"]
    assert isinstance(by_variant, dict)
    for variant, row in by_variant.items():
        lines.append(f"| {variant} | " + " | ".join(_cell(row[s], 0) for s in (*SPLITS, "all")) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    started = time.perf_counter()
    attacks = load_attacks(args.shared)
    chunks = load_chunks(args.shared)
    queries = load_queries(args.shared)

    verdicts = {s.text: screen_injection(s.text) for s in attacks}
    reasons = Counter(r for v in verdicts.values() for r in v.reasons)
    screen_started = time.perf_counter()
    chunk_flags = {s.text: screen_injection(s.text).flagged for s in chunks}
    screen_ms = (time.perf_counter() - screen_started) * 1000 / max(len(chunk_flags), 1)
    query_flags = {s.text: screen_injection(s.text).flagged for s in queries}
    flags = {**chunk_flags, **query_flags, **{t: v.flagged for t, v in verdicts.items()}}

    sets = tally([*attacks, *chunks, *queries], flags.__getitem__)
    sets["benign_chunks"] = tally(
        [Sample("benign_chunks", s.split, s.text) for s in chunks], flags.__getitem__
    )["benign_chunks"]
    by_variant = {
        variant: tally(
            [Sample(variant, s.split, s.text) for s in attacks if s.variant == variant], flags.__getitem__
        )[variant]
        for variant in sorted({s.variant for s in attacks})
    }
    examples = {
        group: [
            " ".join(s.text.split())[:160] for s in [*chunks, *queries] if s.group == group and flags[s.text]
        ][:8]
        for group in ("seeds", "scifact", "queries")
    }
    result: dict[str, object] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "gpu": False},
        "sets": sets,
        "by_variant": by_variant,
        "reasons_on_attacks": dict(reasons.most_common()),
        "false_positive_examples": examples,
        "ms_per_chunk": round(screen_ms, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "injection.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / "injection.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
