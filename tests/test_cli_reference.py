"""docs/cli.md is the CLI's own --help (regenerate with `python -m fathom.cli_reference docs/cli.md`)."""

from __future__ import annotations

from pathlib import Path

from fathom.cli_reference import render

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_is_the_generated_help_of_every_command():
    page = render()
    for command in ("## fathom search", "## fathom keys create", "## fathom eval qa", "## fathom pg stop"):
        assert command in page
    assert "--version" in page and "-k" in page
    assert PAGE.read_text(encoding="utf-8") == page, (
        "docs/cli.md is out of date: run `python -m fathom.cli_reference docs/cli.md`"
    )
