"""``fathom documents list|show|open``: what the home holds, one document's details, its original.

These commands read the store of record only (no index, no model), as the local user: an admin
of the tenant setting's tenant, like every other command of the CLI. A document is named by its
id, by an unambiguous start of its id (as ``list`` prints it), or by its source.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from fathom.cli_common import HomeOption, JsonOption, err, errors, out

if TYPE_CHECKING:
    from fathom.domain import DocumentInfo, Principal
    from fathom.retrieve.documents import DocumentReader

__all__ = ["documents_app"]

documents_app = typer.Typer(
    name="documents",
    help="The documents in the home: list them, show one, open its original.",
    no_args_is_help=True,
)

_ID_WIDTH = 12  # as `list` prints ids: enough to be unambiguous in any real home
DocumentArgument = Annotated[
    str,
    typer.Argument(help="Document id (or its start, as `fathom documents list` prints it), or its source."),
]


def _read(home: Path | None, work: Any) -> Any:
    """Run ``work(reader, principal)`` over the home's store, opened for reading only."""
    from fathom.config import load_settings
    from fathom.domain import Principal
    from fathom.retrieve.documents import DocumentReader
    from fathom.status import home_store

    settings = load_settings(home)
    with home_store(settings) as store:
        return work(DocumentReader(store), Principal(tenant=settings.tenant, admin=True))


def _find(reader: DocumentReader, principal: Principal, wanted: str) -> DocumentInfo:
    """The document ``wanted`` names: its id, its source (a path is resolved), or a start of its id.

    Raises:
        NotFound: no such document (``document.not_found``).
        Conflict: several ids start with ``wanted`` (``document.ambiguous``).
    """
    from fathom.errors import Conflict, NotFound

    if reader.store.get_document(principal.tenant, wanted) is not None:
        return reader.document(principal, wanted)
    for source in (wanted, str(Path(wanted).expanduser().resolve())):
        row = reader.store.find_document(principal.tenant, source)
        if row is not None:
            return reader.document(principal, row.id)
    start = wanted.strip().lower()
    matches = [d for d in reader.documents(principal) if d.doc_id.startswith(start)] if start else []
    if not matches:
        raise NotFound(
            f"no document {wanted!r}: `fathom documents list` shows the ids", code="document.not_found"
        )
    if len(matches) > 1:
        raise Conflict(
            f"{wanted!r} is the start of {len(matches)} document ids: give more of the id",
            code="document.ambiguous",
        )
    return matches[0]


@documents_app.command("list")
def documents_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="Documents per page.")] = 20,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip this many (newest first): the next page.")
    ] = 0,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Documents, newest first: id, title, source, chunks and when each was last updated."""
    with errors():
        documents: list[DocumentInfo] = _read(home, lambda reader, who: reader.documents(who))
    documents.sort(key=lambda d: (d.updated_at, d.doc_id), reverse=True)
    page = documents[offset : offset + limit]
    if as_json:
        rows = [d.to_dict() for d in page]
        total = len(documents)
        out.print_json(json.dumps({"documents": rows, "total": total, "offset": offset, "limit": limit}))
        return
    if not documents:
        err.print("no documents yet — run `fathom ingest`")
        return
    from rich.table import Table

    table = Table("id", "title", "source", "chunks", "updated", box=None, header_style="bold")
    for d in page:
        updated = d.updated_at[:16].replace("T", " ")
        table.add_row(d.doc_id[:_ID_WIDTH], escape(d.title), escape(d.source), str(d.chunks), updated)
    out.print(table)
    shown = f"{offset + 1}-{offset + len(page)}" if page else "none"
    more = f"; --offset {offset + limit} for more" if offset + limit < len(documents) else ""
    err.print(f"[dim]{shown} of {len(documents)}, newest first{more}[/dim]")


@documents_app.command("show")
def documents_show(
    document: DocumentArgument,
    lines: Annotated[int, typer.Option("--lines", min=0, max=10_000, help="Lines of text to show.")] = 10,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """A document's details (type, chunks, dates, metadata, who may read it) and its first lines."""

    def work(reader: DocumentReader, who: Principal) -> tuple[DocumentInfo, str]:
        info = _find(reader, who, document)
        return info, reader.readable(who, info.doc_id).text

    with errors():
        info, text = _read(home, work)
    head = "\n".join(text.splitlines()[:lines])
    if as_json:
        out.print_json(json.dumps({**info.to_dict(), "preview": head}))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("id", info.doc_id)
    table.add_row("title", escape(info.title))
    table.add_row("source", escape(info.source))
    table.add_row("type", escape(info.mime_type))
    table.add_row("chunks", str(info.chunks))
    table.add_row("created", info.created_at[:19].replace("T", " "))
    table.add_row("updated", info.updated_at[:19].replace("T", " "))
    readers = [*(f"user {u}" for u in info.acl_users), *(f"group {g}" for g in info.acl_groups)]
    table.add_row("readers", escape(", ".join(readers)) if readers else "everyone in the tenant")
    for key, value in sorted(info.metadata.items()):
        if key not in ("fingerprint", "structure"):
            table.add_row(escape(key), escape(value if isinstance(value, str) else json.dumps(value)))
    out.print(table)
    if head:
        out.print()
        out.print(head, markup=False, highlight=False)
        if len(text.splitlines()) > lines:
            err.print("[dim]... (`fathom documents show --lines N` for more)[/dim]")


def _opener() -> list[str] | None:
    """The desktop's command for opening a file or URL, when there is one."""
    if sys.platform == "darwin":
        return ["open"]
    found = shutil.which("xdg-open")
    return [found] if found else None


@documents_app.command("open")
def documents_open(
    document: DocumentArgument,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the original's path or URL instead of opening it.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Open a document's original with the desktop's default application.

    On a terminal the original (a file, or the URL it was fetched from) opens in its application;
    otherwise, or with --print, its path or URL is printed, for scripts (`xdg-open "$(...)"`).
    """
    from fathom.errors import NotFound

    with errors():
        info: DocumentInfo = _read(home, lambda reader, who: _find(reader, who, document))
        target = info.metadata.get("url") or info.source
        is_url = isinstance(target, str) and target.startswith(("http://", "https://"))
        if not is_url and not Path(info.source).is_file():
            raise NotFound(
                f"the original of {info.doc_id[:_ID_WIDTH]} ({info.source}) is not a file on this "
                f"machine: `fathom documents show {info.doc_id[:_ID_WIDTH]}` prints its text",
                code="document.original_missing",
            )
    opener = _opener()
    if print_only or opener is None or not sys.stdout.isatty():
        out.print(target, markup=False, highlight=False, soft_wrap=True)
        return
    quiet = subprocess.DEVNULL
    subprocess.run([*opener, target], check=False, stdin=quiet, stdout=quiet, stderr=quiet)
    err.print(f"opened {escape(target)}", highlight=False)
