"""``fathom chat``: an interactive conversation with your documents, with citations.

Each line typed is the next message of a conversation (:meth:`fathom.Fathom.converse_stream`):
follow-ups such as "And its phone?" are read in the context of the earlier turns, and the
standalone question that was searched is shown when it differs. ``--conversation ID`` resumes
a conversation; ``/new`` starts another, ``/quit`` (or Ctrl-D) leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fathom.errors import FathomError

if TYPE_CHECKING:
    from fathom.domain import Answer, Turn

__all__ = ["chat"]

_out = Console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, soft_wrap=True, highlight=False)

_HELP = "Type a question; /new starts a new conversation, /quit leaves."


def _print_answer(answer: Answer | Turn, *, asked: str | None = None) -> None:
    from fathom.domain import Answer, Turn

    standalone = answer.rewrite.standalone if isinstance(answer, Answer) and answer.rewrite else None
    if isinstance(answer, Turn):
        standalone = answer.standalone_question
    if standalone and standalone != asked:
        _out.print(f"[dim](searched as: {escape(standalone)})[/dim]")
    if isinstance(answer, Turn) and answer.redacted:
        _out.print("[dim](answer removed: a document it cited was deleted)[/dim]")
        return
    _out.print(escape(answer.answer))
    for citation in answer.citations:
        where = " > ".join(citation.heading_path)
        _out.print(
            f"  [bold][{citation.n}][/bold] {escape(citation.title)} [dim]{escape(citation.source)}"
            f"{' > ' + escape(where) if where else ''} chars {citation.start}-{citation.end}[/dim]"
        )
    if isinstance(answer, Answer):
        for note in answer.notes:
            _err.print(f"[yellow]note[/yellow] {escape(note)}")


def chat(
    conversation: Annotated[
        str | None,
        typer.Option("--conversation", help="Resume this conversation (its id is printed at the start)."),
    ] = None,
    agent: Annotated[
        bool, typer.Option("--agent", help="Agent mode: the LLM may search and read before answering.")
    ] = False,
    k: Annotated[
        int | None, typer.Option("--k", "-k", min=1, max=50, help="Chunks to read (default 6).")
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Data folder (default: $FATHOM_HOME, else ~/.local/share/fathom).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Talk with your documents: follow-up questions are understood in context, answers cite \\[n].

    Without an LLM, a follow-up carries over the names or key terms of the previous question
    ("And its phone?" after a question about CloudNova asks about CloudNova's phone).
    """
    # Imported here, so the CLI starts without the store and the model.
    from fathom.cli_common import open_home
    from fathom.domain import AnswerDelta

    try:
        fathom = open_home(home, create=False)
        if conversation is None:
            conversation = fathom.start_conversation().conversation_id
        else:
            for turn in fathom.conversation(conversation).turns:
                _out.print(f"[bold]you:[/bold] {escape(turn.question)}")
                _print_answer(turn, asked=turn.question)
    except FathomError as exc:
        _err.print(f"[red]error[/red] {escape(f'[{exc.code}]')} {escape(exc.message)}")
        raise typer.Exit(1) from None
    _out.print(f"[dim]conversation {conversation} (resume with --conversation {conversation}). {_HELP}[/dim]")
    with fathom:
        while True:
            try:
                question = input("you> ").strip()
            except EOFError:
                _out.print()
                return
            if not question:
                continue
            if question in ("/quit", "/exit"):
                return
            if question == "/new":
                conversation = fathom.start_conversation().conversation_id
                _out.print(f"[dim]new conversation {conversation}[/dim]")
                continue
            try:
                answer = None
                for item in fathom.converse_stream(
                    conversation, question, k=k, mode="agent" if agent else "single"
                ):
                    if not isinstance(item, AnswerDelta):
                        answer = item
            except FathomError as exc:
                _err.print(f"[red]error[/red] {escape(f'[{exc.code}]')} {escape(exc.message)}")
                continue
            if answer is not None:
                _print_answer(answer, asked=question)
