"""The ``fathom`` command: a thin layer over :class:`fathom.Fathom`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fathom.api import Fathom
from fathom.domain import IngestReport
from fathom.errors import FathomError

app = typer.Typer(
    name="fathom",
    help="Search your documents and get answers with citations you can check. Runs offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Data folder (default: $FATHOM_HOME, else ~/.local/share/fathom).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

# Exit codes: 0 success, 1 failure, 2 usage error (typer), 3 some files failed.
EXIT_FAILED = 1
EXIT_PARTIAL = 3


def _open(home: Path | None) -> Fathom:
    return Fathom(home=home)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except FathomError as exc:
        err.print(f"[red]error[/red] {escape(f'[{exc.code}]')} {escape(exc.message)}")
        raise typer.Exit(EXIT_FAILED) from None


@contextmanager
def _ingest_progress(enabled: bool) -> Iterator[Any]:
    """A progress display of files, chunks and embeddings, or a no-op callback."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    files = progress.add_task("files", total=None)
    chunks = progress.add_task("chunks", total=None)
    embedded = progress.add_task("embedded", total=None)

    def callback(event: str, amount: int) -> None:
        if event == "files_total":
            progress.update(files, total=amount)
        elif event == "file":
            progress.advance(files, amount)
        elif event == "chunks":
            progress.advance(chunks, amount)
        elif event == "embedded":
            progress.advance(embedded, amount)

    with progress:
        yield callback


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        for outcome in report.outcomes:
            if outcome.status == "failed":
                err.print(
                    f"[red]failed[/red] {escape(outcome.source)}: {escape(outcome.message or '')} "
                    f"[dim]({escape(outcome.error_code or '')})[/dim]"
                )
            for warning in outcome.warnings:
                err.print(f"[yellow]warning[/yellow] {escape(outcome.source)}: {escape(warning)}")
        summary = report.to_dict()["summary"]
        out.print(", ".join(f"{n} {status}" for status, n in summary.items() if n) or "nothing to do")
    if not report.ok:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (folders are read recursively).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Add or update documents (.txt .md .html .pdf .docx; type detected from content).

    Unchanged files are skipped. Exits with 3 when some files failed.
    """
    with _errors():
        fathom = _open(home)
        with _ingest_progress(progress and not as_json) as callback:
            report = fathom.ingest(paths, progress=callback)
    _print_report(report, as_json)


@app.command()
def sync(
    directory: Annotated[Path, typer.Argument(help="Folder to mirror.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Make the store mirror a folder: add new files, update changed ones, delete removed ones."""
    with _errors():
        fathom = _open(home)
        with _ingest_progress(progress and not as_json) as callback:
            report = fathom.sync(directory, progress=callback)
    _print_report(report, as_json)


@app.command()
def delete(
    source: Annotated[str, typer.Argument(help="Document source (file path) or document id.")],
    home: HomeOption = None,
) -> None:
    """Remove a document and its chunks."""
    with _errors():
        doc_id = _open(home).delete(source)
    out.print(f"deleted {doc_id}")


def _parse_filters(values: list[str] | None) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--filter")
        filters[key] = value
    return filters


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Number of results.")] = 10,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="KEY=VALUE on document metadata (source, type, filename, ...)."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hybrid search (BM25 + dense vectors, fused) over the ingested documents."""
    filters = _parse_filters(filter_)
    with _errors():
        hits = _open(home).search(query, k=k, filters=filters)
    if as_json:
        out.print_json(json.dumps({"hits": [h.to_dict() for h in hits]}))
        return
    if not hits:
        out.print("no results")
        return
    for rank, hit in enumerate(hits, start=1):
        where = " > ".join(hit.heading_path)
        out.print(
            f"[bold]{rank}. {escape(hit.title)}[/bold]  [dim]{escape(hit.source)} {hit.score:.4f}[/dim]"
        )
        if where:
            out.print(f"   [dim]{escape(where)}[/dim]")
        snippet = " ".join(hit.text.split())
        out.print(f"   {escape(snippet[:300])}{'…' if len(snippet) > 300 else ''}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question about your documents.")],
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="Chunks to read (default 6).")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer with verbatim sentences from your documents, each cited \\[n]; abstains when unsupported."""
    with _errors():
        answer = _open(home).ask(question, k=k)
    if as_json:
        out.print_json(json.dumps(answer.to_dict()))
        return
    out.print(escape(answer.answer))
    if answer.citations:
        out.print()
        for citation in answer.citations:
            where = " > ".join(citation.heading_path)
            out.print(
                f"[bold][{citation.n}][/bold] {escape(citation.title)} [dim]{escape(citation.source)}"
                f"{' > ' + escape(where) if where else ''} chars {citation.start}-{citation.end}[/dim]"
            )


@app.command()
def status(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Documents, chunks, index positions and disk use."""
    with _errors():
        info = _open(home).status()
    if as_json:
        out.print_json(json.dumps(info.to_dict()))
        return
    table = Table(show_header=False, box=None)
    table.add_row("home", escape(info.home))
    table.add_row("database", escape(info.database))
    table.add_row("embedder", escape(info.embedder))
    table.add_row("documents", str(info.documents))
    table.add_row("chunks", str(info.chunks))
    table.add_row("change log", f"sequence {info.last_sequence}")
    for name, position in info.index_positions.items():
        table.add_row(f"{name} index", f"{info.index_chunks[name]} chunks at sequence {position}")
    table.add_row("disk use", f"{info.disk_bytes / 1_048_576:.1f} MiB")
    out.print(table)


@app.command()
def reindex(home: HomeOption = None) -> None:
    """Rebuild every index from the store of record."""
    with _errors():
        fathom = _open(home)
        with Progress(
            TextColumn("reindex"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("reindex", total=None)
            fathom.reindex(lambda done, total: progress.update(task, completed=done, total=total))
        info = fathom.status()
    out.print(f"rebuilt {info.chunks} chunks from {info.documents} documents")


eval_app = typer.Typer(
    name="eval",
    help="Measure retrieval and answer quality (BEIR collections, golden QA sets).",
    no_args_is_help=True,
)
app.add_typer(eval_app)


@contextmanager
def _eval_progress(enabled: bool) -> Iterator[Any]:
    """A progress bar per phase ("ingest", "query", "question"), or no callback."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    tasks: dict[str, Any] = {}

    def callback(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total)
        progress.update(tasks[phase], completed=done, total=total)

    with progress:
        yield callback


def _figures_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[Path, typer.Option("--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option("--split", help="Judgement split (qrels/SPLIT.tsv).")] = "test",
    eval_home: Annotated[
        Path | None,
        typer.Option(
            "--eval-home",
            help="Scratch home for the corpus (default ~/.cache/fathom/eval/NAME); reused while unchanged.",
            show_default=False,
        ),
    ] = None,
    per_query: Annotated[
        Path | None,
        typer.Option(
            "--per-query", help="Where to write per-query results (JSON lines).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and per-query latency (query embedding included) on a BEIR set.

    Settings (FATHOM_* variables, fathom.toml in the eval home) apply as in search.
    """
    from fathom.eval.retrieval import evaluate_retrieval

    with _errors(), _eval_progress(not as_json) as callback:
        report = evaluate_retrieval(
            beir, split=split, home=eval_home, progress=callback, per_query_path=per_query
        )
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    out.print(
        _figures_table(
            f"{escape(report.dataset)} {escape(report.split)}: {report.queries} queries",
            [
                ("nDCG@10", f"{report.ndcg_at_10:.4f}"),
                ("Recall@100", f"{report.recall_at_100:.4f}"),
                ("MRR@10", f"{report.mrr_at_10:.4f}"),
                ("p50 latency", f"{report.p50_ms:.1f} ms"),
                ("p95 latency", f"{report.p95_ms:.1f} ms"),
            ],
        )
    )
    out.print(f"[dim]per-query results: {escape(report.per_query_path)}[/dim]")


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@eval_app.command("qa")
def eval_qa(
    qa: Annotated[Path, typer.Option("--qa", help="Golden QA set (JSON lines), e.g. seeds-qa/dev.jsonl.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evidence hit@1/@5, answer-contains rate and abstention precision/recall on the current home."""
    from fathom.eval.qa import evaluate_qa

    with _errors(), _eval_progress(not as_json) as callback:
        report = evaluate_qa(_open(home), qa, progress=callback)
    if as_json:
        out.print_json(json.dumps(report.to_dict(per_question=True)))
        return
    out.print(
        _figures_table(
            f"{report.questions} questions ({report.answerable} answerable, {report.unanswerable} not)",
            [
                ("evidence hit@1", _rate(report.evidence_hit_at_1)),
                ("evidence hit@5", _rate(report.evidence_hit_at_5)),
                ("answer contains", _rate(report.answer_contains)),
                ("abstention precision", _rate(report.abstention_precision)),
                ("abstention recall", _rate(report.abstention_recall)),
                ("ask p50 / p95", f"{report.p50_ms:.0f} / {report.p95_ms:.0f} ms"),
            ],
        )
    )
    misses = [r.id for r in report.results if r.answerable and not r.contains_answer]
    if misses:
        out.print(f"[dim]answers missing the expected text: {escape(', '.join(misses))}[/dim]")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
