"""The ``fathom`` command: a thin layer over :class:`fathom.Fathom`.

Start-up stays light: this module imports typer, rich's console and small fathom modules only;
each command imports what it needs (the store, the indexes, the model) when it runs, so
``--help`` and ``status`` never import torch. ``search`` and ``ask`` go to a running
``fathom serve`` when ``FATHOM_URL`` is set (:mod:`fathom.remote`); the console entry point
(:mod:`fathom.entry`) sends the plain forms of those before this module is even imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from fathom.chat import chat
from fathom.cli_admin import keys_app, pg_app
from fathom.cli_audit import audit_app
from fathom.cli_common import (
    EXIT_PARTIAL,
    HomeOption,
    JsonOption,
    err,
    errors,
    open_home,
    out,
)
from fathom.cli_documents import documents_app
from fathom.cli_output import print_answer, print_hits, print_json
from fathom.cli_privacy import compact, erase
from fathom.cli_progress import IngestTally, ingest_progress, interrupted
from fathom.errors import NotFound

if TYPE_CHECKING:
    from rich.table import Table

    from fathom.api import Fathom
    from fathom.domain import IngestReport
    from fathom.remote import RemoteClient

app = typer.Typer(
    name="fathom",
    help="Search your documents and get answers with citations you can check. Runs offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from fathom import __version__

        out.print(f"fathom {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Search your documents and get answers with citations you can check. Runs offline."""


def _open_with_documents(home: Path | None) -> Fathom:
    """The home, refused when it holds no document yet (before the API or a model is loaded)."""
    from fathom.status import home_documents

    if not home_documents(home):
        raise NotFound("no documents yet — run `fathom ingest`", code="store.empty")
    return open_home(home)


ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Parse, chunk and embed on a cluster: 'ray' (RAY_ADDRESS, else a local runtime on "
        "loopback; needs pip install 'fathom-search[cluster]'). Same result as without.",
        show_default=False,
    ),
]


def _prepare_cluster(cluster: str | None) -> None:
    """Load the cluster engine before the home's indexes (see fathom.ingest.cluster.import_ray)."""
    if cluster is not None:
        from fathom.ingest.cluster import prepare_cluster

        prepare_cluster(cluster)


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        for outcome in report.outcomes:
            if outcome.status in ("failed", "skipped"):
                label = "[red]failed[/red]" if outcome.status == "failed" else "[dim]skipped[/dim]"
                err.print(
                    f"{label} {escape(outcome.source)}: {escape(outcome.message or '')} "
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
    cluster: ClusterOption = None,
) -> None:
    """Add or update documents and URLs; the type is detected from the content.

    Reads text, Markdown, HTML, PDF, Word, PowerPoint, Excel, CSV, JSON/JSONL and e-mail
    (.eml). Unchanged files are left as they are; images, archives, other binary files and
    empty files are skipped, each with its reason. URLs to private or loopback addresses are
    refused unless allowed by the url_allow setting. Exits with 3 when some files failed,
    130 when interrupted (what was stored is kept: run the command again to resume).
    """
    with errors():
        _prepare_cluster(cluster)
        fathom = open_home(home)
        tally = IngestTally()
        try:
            with ingest_progress(progress and not as_json, tally) as callback:
                report = fathom.ingest(paths, progress=callback, cluster=cluster)
        except KeyboardInterrupt:
            interrupted(tally)
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
    cluster: ClusterOption = None,
) -> None:
    """Make the store mirror a folder: add new files, update changed ones, delete removed ones.

    With --watch, keeps mirroring (create, modify, rename, delete; debounced by the
    sync_debounce_ms setting). Restarting after a crash resumes from a full sync.
    """
    with errors():
        _prepare_cluster(cluster)
        fathom = open_home(home)
        if watch:

            def report_changes(report: IngestReport) -> None:
                with contextlib.suppress(typer.Exit):  # failures are printed; keep watching
                    _print_report(report, as_json)

            fathom.watch(directory, report_changes, cluster=cluster)
            return
        tally = IngestTally()
        try:
            with ingest_progress(progress and not as_json, tally) as callback:
                report = fathom.sync(directory, progress=callback, cluster=cluster)
        except KeyboardInterrupt:
            interrupted(tally)
    _print_report(report, as_json)


@app.command()
def delete(
    source: Annotated[str, typer.Argument(help="Document source (file path) or document id.")],
    home: HomeOption = None,
) -> None:
    """Remove a document and its chunks."""
    with errors():
        doc_id = open_home(home, create=False).delete(source)
    out.print(f"deleted {doc_id}")


def _parse_filters(values: list[str] | None) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--filter")
        filters[key] = value
    return filters


def _remote(home: Path | None) -> RemoteClient | None:
    """The server to ask instead of the local home: FATHOM_URL, unless --home was given."""
    if home is not None:
        return None
    from fathom.remote import remote_from_environment

    return remote_from_environment()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of results.")] = 10,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="KEY=VALUE on document metadata (source, type, filename, ...)."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hybrid search (BM25 + dense vectors, fused) over the ingested documents.

    With FATHOM_URL (and FATHOM_API_KEY) set and no --home, the query goes to that `fathom serve`.
    """
    filters = _parse_filters(filter_)
    with errors():
        remote = _remote(home)
        if remote is not None:
            with remote:
                hits = remote.search(query, k=k, filters=filters)
        else:
            with _open_with_documents(home) as fathom:
                hits = [hit.to_dict() for hit in fathom.search(query, k=k, filters=filters)]
    if as_json:
        print_json({"hits": hits})
        return
    print_hits(hits)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question about your documents.")],
    k: Annotated[
        int | None, typer.Option("--k", "-k", min=1, max=50, help="Chunks to read (default 6).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer from your documents, each sentence cited \\[n]; abstains when unsupported.

    The answer is verbatim sentences by default; with an LLM configured (FATHOM_LLM=openai:MODEL)
    the generated text streams to stderr and the verified answer is printed when it is done.
    With FATHOM_URL (and FATHOM_API_KEY) set and no --home, the question goes to that `fathom serve`.
    """
    with errors():
        remote = _remote(home)
        if remote is not None:
            with remote:
                answer = remote.ask(question, k=k)
        else:
            answer = _ask_locally(home, question, k, stream=not as_json and err.is_terminal)
    if as_json:
        print_json(answer)
        return
    print_answer(answer)


def _ask_locally(home: Path | None, question: str, k: int | None, *, stream: bool) -> dict[str, Any]:
    """Ask the local home; an LLM's raw text streams to stderr when ``stream``."""
    from fathom.domain import Answer, AnswerDelta

    answer: Answer | None = None
    with _open_with_documents(home) as fathom:
        for item in fathom.ask_stream(question, k=k):
            if isinstance(item, AnswerDelta):
                if stream:
                    err.print(escape(item.text), end="", style="dim")
            else:
                answer = item
    assert answer is not None
    if stream and answer.model != "extractive":
        err.print()
    return answer.to_dict()


@app.command()
def status(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Documents, chunks, index positions and disk use.

    Reports the indexes as they stand (the next ingest or search catches them up); loads no model.
    """
    from rich.table import Table

    from fathom.status import home_status

    with errors():
        info = home_status(home)
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with errors():
        fathom = open_home(home, create=False)
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
    from rich.table import Table

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

    with errors(), _eval_progress(not as_json) as callback:
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

    with errors(), _eval_progress(not as_json) as callback:
        report = evaluate_qa(open_home(home, create=False), qa, progress=callback)
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


app.add_typer(documents_app)
app.add_typer(keys_app)
app.add_typer(pg_app)
app.add_typer(audit_app)


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

    Prints the web page's and the API's addresses on start (port 0: a free port is chosen).
    Connection limits (header and keep-alive timeouts, connection cap) come from the http_* settings.
    """
    import uvicorn

    from fathom.config import load_settings
    from fathom.service.app import check_backends
    from fathom.service.http import server_options

    if home is not None:
        # Worker processes read their settings from the environment.
        os.environ["FATHOM_HOME"] = str(home.expanduser().resolve())
    from fathom.status import check_home

    with errors():
        settings = load_settings()
        check_home(settings, create=True)
        # An unreachable database or Redis is one clear line and exit code 1, not a traceback
        # from each worker process.
        check_backends(settings)
        port = _bindable_port(host, port)
        base = f"http://{_url_host(host)}:{port}"
        out.print(f"fathom serve: web page {base}/  API {base}/v1  docs {base}/docs  MCP {base}/mcp")
        if host in ("0.0.0.0", "::"):
            out.print(f"listening on every address of this machine (--host {host})")
        out.print("Ctrl-C stops the server", style="dim")
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


def _bindable_port(host: str, port: int) -> int:
    """``port`` once checked free on ``host`` (port 0: a free one), so a busy port is one clear error.

    Raises:
        ConfigError: the port is in use or the address is not this machine's (``serve.cannot_listen``).
    """
    import socket

    from fathom.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or 'unavailable'}): "
                "choose another --port or --host",
                code="serve.cannot_listen",
            ) from None
        return int(probe.getsockname()[1])


def _url_host(host: str) -> str:
    """The host part of a URL a browser on this machine can open."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


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
    from fathom.status import check_home

    overrides = {"tenant": tenant} if tenant else {}
    with errors():
        settings = load_settings(home, **overrides)
        check_home(settings, create=True)
        run_stdio(settings)


# `fathom chat` lives in its own module (fathom.chat).
app.command("chat")(chat)
app.command("compact")(compact)
app.command("erase")(erase)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
