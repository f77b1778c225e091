"""How the ``fathom`` command prints hits, answers, JSON and errors.

The printers take the JSON form (``Hit.to_dict()``, ``Answer.to_dict()``, or the HTTP API's
bodies), so a command answered by a local home and one answered by ``fathom serve`` print the
same lines. They use no rich (its import alone costs more than a search through a server):
bold, dim and colours are plain ANSI codes, written only to a terminal, never with
``NO_COLOR`` set or ``TERM=dumb`` (``FORCE_COLOR`` forces them).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["print_answer", "print_error", "print_hits", "print_json"]

_SNIPPET = 300
_CODES = {"bold": "1", "dim": "2", "red": "31", "yellow": "33"}


class _Writer:
    """Lines of styled pieces on one stream (looked up when used, so tests can capture it)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout

    def _colour(self) -> bool:
        if os.environ.get("NO_COLOR"):
            return False
        if os.environ.get("FORCE_COLOR"):
            return True
        return os.environ.get("TERM") != "dumb" and self.stream.isatty()

    def line(self, *pieces: str | tuple[str, str]) -> None:
        """One line; a piece is text, or (style, text) with a style of ``_CODES``."""
        colour = self._colour()
        parts: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(piece)
            elif colour:
                parts.append(f"\x1b[{_CODES[piece[0]]}m{piece[1]}\x1b[0m")
            else:
                parts.append(piece[1])
        self.stream.write("".join(parts) + "\n")
        self.stream.flush()


_out = _Writer(stderr=False)
_err = _Writer(stderr=True)


def print_error(code: str, message: str) -> None:
    """The one line every failure prints on standard error: ``error [CODE] MESSAGE``."""
    _err.line(("red", "error"), f" [{code}] {message}")


def print_json(data: Any) -> None:
    """Indented JSON on standard output (as ``rich``'s ``print_json`` writes it, uncoloured)."""
    _out.line(json.dumps(data, indent=2, ensure_ascii=False))


def print_hits(hits: Sequence[Mapping[str, Any]]) -> None:
    if not hits:
        _out.line("no results")
        return
    for rank, hit in enumerate(hits, start=1):
        where = " > ".join(hit.get("heading_path") or ())
        score = float(hit["score"])
        _out.line(("bold", f"{rank}. {hit['title']}"), "  ", ("dim", f"{hit['source']} {score:.4f}"))
        if where:
            _out.line("   ", ("dim", where))
        snippet = " ".join(str(hit["text"]).split())
        _out.line(f"   {snippet[:_SNIPPET]}{'…' if len(snippet) > _SNIPPET else ''}")


def print_answer(answer: Mapping[str, Any]) -> None:
    _out.line(str(answer["answer"]))
    citations = answer.get("citations") or []
    if citations:
        _out.line()
        for citation in citations:
            where = " > ".join(citation.get("heading_path") or ())
            _out.line(
                ("bold", f"[{citation['n']}]"),
                f" {citation['title']} ",
                (
                    "dim",
                    f"{citation['source']}{' > ' + where if where else ''} "
                    f"chars {citation['start']}-{citation['end']}",
                ),
            )
    model = answer.get("model") or "extractive"
    if model != "extractive":
        groundedness = answer.get("groundedness")
        grounded = "n/a" if groundedness is None else f"{groundedness:.2f}"
        usage = answer.get("usage") or {}
        cost = "" if usage.get("cost") is None else f", ${usage['cost']:.6f}"
        _out.line(
            (
                "dim",
                f"{model} {answer.get('prompt_version') or ''}, groundedness {grounded}, "
                f"{usage.get('total_tokens', 0)} tokens{cost}",
            )
        )
    for note in answer.get("notes") or ():
        _err.line(("yellow", "note"), f" {note}")
