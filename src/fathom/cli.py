"""The ``fathom`` command: a thin layer over :class:`fathom.Fathom`."""

from __future__ import annotations

import contextlib
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
    paths: Annotated[
        list[str],
        typer.Argument(help="Files, folders (read recursively) and http(s) URLs.", show_default=False),
    ],
    home: HomeOption = None,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Add or update documents and URLs; the type is detected from the content.

    Reads text, Markdown, HTML, PDF, Word, PowerPoint, Excel, CSV, JSON/JSONL and e-mail
    (.eml). Unchanged files are skipped. URLs to private or loopback addresses are refused
    unless allowed by the url_allow setting. Exits with 3 when some files failed.
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
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running and apply changes as they happen (Ctrl-C stops).")
    ] = False,
) -> None:
    """Make the store mirror a folder: add new files, update changed ones, delete removed ones.

    With --watch, keeps mirroring (create, modify, rename, delete; debounced by the
    sync_debounce_ms setting). Restarting after a crash resumes from a full sync.
    """
    with _errors():
        fathom = _open(home)
        if watch:

            def report_changes(report: IngestReport) -> None:
                with contextlib.suppress(typer.Exit):  # failures are printed; keep watching
                    _print_report(report, as_json)

            fathom.watch(directory, report_changes)
            return
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


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
