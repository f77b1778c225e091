"""What every ``fathom`` command shares: the consoles, the common options, exit codes, opening
a home and turning fathom errors into one line on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from fathom.cli_output import print_error
from fathom.errors import FathomError

if TYPE_CHECKING:
    from fathom.api import Fathom

__all__ = ["EXIT_FAILED", "EXIT_PARTIAL", "HomeOption", "JsonOption", "err", "errors", "open_home", "out"]


def _plain_help_labels() -> None:
    """Help that reads like click's: ``ingest [OPTIONS] PATHS...``, ``--port INTEGER RANGE``.

    typer 0.29 labels every parameter with its Python type (``<bool>`` on a flag that takes no
    value, ``<list[str]>``) and wraps required arguments in braces (``{paths}``). Flags get no
    label, options their click metavar, arguments their upper-case name; the generated
    docs/cli.md (checked by a test) shows when a typer release changes this again.
    """
    from typer.core import TyperArgument, TyperOption

    if not hasattr(TyperArgument, "_usage_display_name"):
        return  # older typer: click's own labels already

    def usage_name(self: TyperArgument) -> str:
        name = self.name.upper() if self.metavar is None and self.name else str(self.metavar)
        if self.nargs != 1:
            name += "..."
        return name if self.required else f"[{name}]"

    def argument_type(self: TyperArgument, ctx: Any) -> str | None:
        return None  # the name column says it

    def option_type(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return str(self.metavar)
        label = str(self.display_type(ctx)).strip("<>").replace(" range", "")
        label = label.removeprefix("list[").removesuffix("]")  # a repeatable option
        return {"str": "TEXT", "int": "INTEGER", "float": "NUMBER"}.get(label, label.upper())

    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign,assignment]
    TyperOption.display_type_rich = option_type  # type: ignore[method-assign]


_plain_help_labels()

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
