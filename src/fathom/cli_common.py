"""What every ``fathom`` command shares: the consoles, the common options, exit codes, opening
a home and turning fathom errors into one line on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fathom.cli_output import print_error
from fathom.errors import FathomError

if TYPE_CHECKING:
    from fathom.api import Fathom

__all__ = ["EXIT_FAILED", "EXIT_PARTIAL", "HomeOption", "JsonOption", "err", "errors", "open_home", "out"]

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


def open_home(home: Path | None, *, create: bool = True) -> Fathom:
    """The library over ``home`` (imported here, when a command runs).

    Commands that only read pass ``create=False``: a home that does not exist is an error
    (``home.not_found``) rather than a new empty one; a home that is a file always is one.
    """
    from fathom.api import Fathom
    from fathom.config import load_settings
    from fathom.status import check_home

    check_home(load_settings(home), create=create)
    return Fathom(home=home)


@contextmanager
def errors() -> Iterator[None]:
    """Print a :class:`FathomError` as ``error [code] message`` and exit 1."""
    try:
        yield
    except FathomError as exc:
        print_error(exc.code, exc.message)
        raise typer.Exit(EXIT_FAILED) from None
