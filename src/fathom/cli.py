"""The ``fathom`` command: a thin layer over :class:`fathom.Fathom`."""

from __future__ import annotations

import contextlib
import json
import os
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
from fathom.chat import chat
from fathom.domain import AnswerDelta, IngestReport
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
    """Answer from your documents, each sentence cited \\[n]; abstains when unsupported.

    The answer is verbatim sentences by default; with an LLM configured (FATHOM_LLM=openai:MODEL)
    the generated text streams to stderr and the verified answer is printed when it is done.
    """
    stream = not as_json and err.is_terminal
    with _errors():
        answer = None
        for item in _open(home).ask_stream(question, k=k):
            if isinstance(item, AnswerDelta):
                if stream:
                    err.print(escape(item.text), end="", style="dim")
            else:
                answer = item
        if stream and answer is not None and answer.model != "extractive":
            err.print()
    assert answer is not None
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
    if answer.model != "extractive":
        grounded = "n/a" if answer.groundedness is None else f"{answer.groundedness:.2f}"
        cost = "" if answer.usage.cost is None else f", ${answer.usage.cost:.6f}"
        out.print(
            f"[dim]{escape(answer.model)} {escape(answer.prompt_version or '')}, groundedness {grounded}, "
            f"{answer.usage.total_tokens} tokens{cost}[/dim]"
        )
    for note in answer.notes:
        err.print(f"[yellow]note[/yellow] {escape(note)}")


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
        table.add_row("index", f"{name} backend at sequence {position}")
    for part, chunks in info.index_chunks.items():
        table.add_row(f"  {part}", f"{chunks} chunks")
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
            help="Scratch home for the corpus (default ~/.cache/fathom/eval/NAME-HASH); reused if unchanged.",
            show_default=False,
        ),
    ] = None,
    per_query: Annotated[
        Path | None,
        typer.Option(
            "--per-query", help="Where to write per-query results (JSON lines).", show_default=False
        ),
    ] = None,
    query_transform: Annotated[
        str | None,
        typer.Option(
            "--query-transform",
            help="none, rewrite, multi_query or hyde: transform every query with the configured LLM "
            "(FATHOM_LLM, FATHOM_LLM_BASE_URL) before searching (default: the query_transform setting).",
            show_default=False,
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
            beir,
            split=split,
            home=eval_home,
            progress=callback,
            per_query_path=per_query,
            query_transform=query_transform,
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
                ("query transform", escape(report.query_transform)),
            ],
        )
    )
    for code, count in sorted(report.transform_fallbacks.items()):
        err.print(f"[yellow]note[/yellow] {count} queries searched untransformed ({escape(code)})")
    out.print(f"[dim]per-query results: {escape(report.per_query_path)}[/dim]")


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@eval_app.command("qa")
def eval_qa(
    qa: Annotated[Path, typer.Option("--qa", help="Golden QA set (JSON lines), e.g. seeds-qa/dev.jsonl.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evidence hit@1/@5, answer-level scores and abstention precision/recall on the current home."""
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
                ("answer cites evidence", _rate(report.answer_cites_evidence)),
                ("answer correct (no echo)", _rate(report.answer_correct)),
                ("question echoes", _rate(report.echo_rate)),
                ("abstention precision", _rate(report.abstention_precision)),
                ("abstention recall", _rate(report.abstention_recall)),
                ("ask p50 / p95", f"{report.p50_ms:.0f} / {report.p95_ms:.0f} ms"),
            ],
        )
    )
    misses = [r.id for r in report.results if r.answerable and not r.contains_answer]
    if misses:
        out.print(f"[dim]answers missing the expected text: {escape(', '.join(misses))}[/dim]")


keys_app = typer.Typer(
    name="keys",
    help="API keys of the HTTP service: each key is a tenant, a user and groups.",
    no_args_is_help=True,
)
app.add_typer(keys_app)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key belongs to.")],
    user: Annotated[str | None, typer.Option("--user", help="The user the key acts as.")] = None,
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated groups, e.g. eng,ops.")] = "",
    admin: Annotated[
        bool, typer.Option("--admin", help="Sees and deletes every document of its tenant.")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: only its hash is stored."""
    group_list = [g.strip() for g in groups.split(",") if g.strip()]
    with _errors():
        key, info = _open(home).keys.create(tenant=tenant, user=user, groups=group_list, admin=admin)
    if as_json:
        out.print_json(json.dumps({"key": key, **info.to_dict()}))
        return
    out.print(key, highlight=False)
    err.print(f"key {info.key_id} for tenant {escape(tenant)}: store it now, it is not shown again")


@keys_app.command("list")
def keys_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List API keys (ids, prefixes, principals; never the keys)."""
    with _errors():
        keys = _open(home).keys.list()
    if as_json:
        out.print_json(json.dumps({"keys": [k.to_dict() for k in keys]}))
        return
    table = Table("id", "prefix", "tenant", "user", "groups", "admin", "created", "revoked")
    for k in keys:
        table.add_row(
            k.key_id,
            k.prefix,
            escape(k.tenant),
            escape(k.user or ""),
            escape(",".join(k.groups)),
            "yes" if k.admin else "",
            k.created_at[:19],
            "revoked" if k.revoked else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (from `fathom keys list`).")],
    home: HomeOption = None,
) -> None:
    """Revoke an API key; requests with it fail from now on."""
    with _errors():
        info = _open(home).keys.revoke(key)
    out.print(f"revoked {info.key_id}")


pg_app = typer.Typer(
    name="pg",
    help="A local PostgreSQL 18 with pgvector for trying the postgres backend (extra: postgres-local).",
    no_args_is_help=True,
)
app.add_typer(pg_app)

PgDirOption = Annotated[
    Path, typer.Option("--dir", help="Folder of the server's files (created on first start).")
]


@pg_app.command("start")
def pg_start(
    directory: PgDirOption,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, help="Port on 127.0.0.1 (default: the last one, else a free one)."
        ),
    ] = None,
) -> None:
    """Start a local PostgreSQL with pgvector (initialised on first use) and print its database URL.

    It listens on 127.0.0.1 only and trusts every local connection: for tests and trials on one
    machine. Use the URL as FATHOM_DATABASE_URL, with FATHOM_INDEX_BACKEND=postgres.
    """
    from fathom.logs import configure_logging
    from fathom.store import local_postgres

    configure_logging("WARNING")
    with _errors():
        server = local_postgres.start(directory, port)
    out.print(server.url, highlight=False, soft_wrap=True)


@pg_app.command("stop")
def pg_stop(directory: PgDirOption) -> None:
    """Stop the local PostgreSQL started with `fathom pg start --dir DIR`."""
    from fathom.logs import configure_logging
    from fathom.store import local_postgres

    configure_logging("WARNING")
    with _errors():
        stopped = local_postgres.stop(directory)
    err.print("stopped" if stopped else "not running")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Server processes (uvicorn workers).")
    ] = 1,
    home: HomeOption = None,
) -> None:
    """Run the HTTP service (API under /v1, docs at /docs, MCP at /mcp); logs are JSON lines on stderr.

    Connection limits (header and keep-alive timeouts, connection cap) come from the http_* settings.
    """
    import uvicorn

    from fathom.config import load_settings
    from fathom.service.app import check_backends
    from fathom.service.http import server_options

    if home is not None:
        # Worker processes read their settings from the environment.
        os.environ["FATHOM_HOME"] = str(home.expanduser().resolve())
    with _errors():
        settings = load_settings()
        # An unreachable database or Redis is one clear line and exit code 1, not a traceback
        # from each worker process.
        check_backends(settings)
        uvicorn.run(
            "fathom.service.app:create_app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            **server_options(settings),
        )


@app.command("mcp")
def mcp_stdio(
    home: HomeOption = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Tenant whose documents the tools read and write (default: the tenant setting, "
            "'default', which `fathom ingest` uses).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run an MCP server on stdio for an assistant (Claude Desktop, an IDE, any MCP client).

    Tools: search, ask, ingest_text, list_documents, get_document; results carry citations.

    It acts as the local user, an admin of the tenant: it reads every document of that tenant, none of others.

    Standard output is the protocol; logs go to standard error. See docs/mcp.md.

    `fathom serve` offers the same tools over streamable HTTP at /mcp, behind API keys.
    """
    from fathom.config import load_settings
    from fathom.mcp.stdio import run_stdio

    overrides = {"tenant": tenant} if tenant else {}
    with _errors():
        run_stdio(load_settings(home, **overrides))


# `fathom chat` lives in its own module (fathom.chat).
app.command("chat")(chat)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
