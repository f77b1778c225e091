"""How the ``fathom`` command prints hits and answers.

Both take the JSON form (``Hit.to_dict()``, ``Answer.to_dict()``, or the HTTP API's bodies), so a
command answered by a local home and one answered by ``fathom serve`` print the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["err", "out", "print_answer", "print_error", "print_hits"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

_SNIPPET = 300


def print_error(code: str, message: str) -> None:
    """The one line every failure prints on standard error."""
    err.print(f"[red]error[/red] {escape(f'[{code}]')} {escape(message)}")


def print_hits(hits: Sequence[Mapping[str, Any]]) -> None:
    if not hits:
        out.print("no results")
        return
    for rank, hit in enumerate(hits, start=1):
        where = " > ".join(hit.get("heading_path") or ())
        out.print(
            f"[bold]{rank}. {escape(hit['title'])}[/bold]  "
            f"[dim]{escape(hit['source'])} {float(hit['score']):.4f}[/dim]"
        )
        if where:
            out.print(f"   [dim]{escape(where)}[/dim]")
        snippet = " ".join(str(hit["text"]).split())
        out.print(f"   {escape(snippet[:_SNIPPET])}{'…' if len(snippet) > _SNIPPET else ''}")


def print_answer(answer: Mapping[str, Any]) -> None:
    out.print(escape(answer["answer"]))
    citations = answer.get("citations") or []
    if citations:
        out.print()
        for citation in citations:
            where = " > ".join(citation.get("heading_path") or ())
            title, source = escape(citation["title"]), escape(citation["source"])
            out.print(
                f"[bold][{citation['n']}][/bold] {title} [dim]{source}"
                f"{' > ' + escape(where) if where else ''} chars {citation['start']}-{citation['end']}[/dim]"
            )
    model = answer.get("model") or "extractive"
    if model != "extractive":
        groundedness = answer.get("groundedness")
        grounded = "n/a" if groundedness is None else f"{groundedness:.2f}"
        usage = answer.get("usage") or {}
        cost = "" if usage.get("cost") is None else f", ${usage['cost']:.6f}"
        out.print(
            f"[dim]{escape(model)} {escape(answer.get('prompt_version') or '')}, groundedness {grounded}, "
            f"{usage.get('total_tokens', 0)} tokens{cost}[/dim]"
        )
    for note in answer.get("notes") or ():
        err.print(f"[yellow]note[/yellow] {escape(note)}")
