"""Progress of ``fathom ingest`` and ``fathom sync``, and what a Ctrl-C in the middle kept.

The display starts once the sources are listed, so the files bar has its total from its first
frame and every line shows its rate; the chunks and embeddings lines show the totals of the files
parsed so far, growing as parsing goes on, and a count and a rate until the first file is parsed
(never an endless ``N/?`` bar).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from fathom.cli_common import err

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import Task
    from rich.text import Text

__all__ = ["EXIT_INTERRUPTED", "IngestTally", "ingest_progress", "interrupted"]

# 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


class IngestTally:
    """Counts the documents an ingest has committed (the pipeline reports ``chunks`` once per
    committed document), so an interruption can say what was kept."""

    def __init__(self) -> None:
        self.stored = 0

    def __call__(self, event: str, amount: int) -> None:
        if event == "chunks":
            self.stored += 1


@contextmanager
def ingest_progress(enabled: bool, tally: IngestTally) -> Iterator[Callable[[str, int], None]]:
    """A progress callback that feeds ``tally`` and, when ``enabled``, a display on stderr."""
    if not enabled:
        yield tally
        return
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class KnownTotalBar(ProgressColumn):
        """A bar for a line whose total is known; nothing (not a pulse) for the others."""

        def __init__(self) -> None:
            super().__init__()
            self._bar = BarColumn()

        def render(self, task: Task) -> RenderableType:
            return Text("") if task.total is None else self._bar.render(task)

    class CountColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            done = int(task.completed)
            return Text(f"{done}/{int(task.total)}" if task.total is not None else str(done), style="green")

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.1f}/s", style="cyan")

    progress = Progress(
        TextColumn("{task.description:<10}"),
        KnownTotalBar(),
        CountColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def callback(event: str, amount: int) -> None:
        tally(event, amount)
        if event == "files_total":  # the first event: the display starts with the total known
            if not tasks:
                tasks["files"] = progress.add_task("files", total=amount)
                tasks["chunks"] = progress.add_task("chunks", total=None)
                tasks["embedded"] = progress.add_task("embedded", total=None)
                progress.start()
            progress.update(tasks["files"], total=amount)
        elif tasks and event in ("chunks_total", "embeddings_total"):
            # Totals grow as files are parsed (and their chunks found not yet embedded).
            task = tasks["chunks" if event == "chunks_total" else "embedded"]
            progress.update(task, total=(progress.tasks[task].total or 0) + amount)
        elif tasks and (event in tasks or event == "file"):
            progress.advance(tasks["files" if event == "file" else event], amount)

    try:
        yield callback
    finally:
        progress.stop()


def interrupted(tally: IngestTally) -> NoReturn:
    """Say what an interrupted ingest kept and how to resume it; exit 130."""
    command = shlex.join(["fathom", *sys.argv[1:]])
    stored = f"{tally.stored} document{'s' if tally.stored != 1 else ''}"
    err.print(
        f"interrupted: {stored} stored by this run are kept (each file is committed whole, "
        "nothing half-written).",
        highlight=False,
    )
    err.print(
        f"To resume, run the same command again ({command}): stored files are skipped as unchanged.",
        highlight=False,
        markup=False,
    )
    raise typer.Exit(EXIT_INTERRUPTED)
