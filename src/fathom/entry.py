"""The ``fathom`` console entry point.

A plain ``fathom search QUERY`` or ``fathom ask QUESTION`` with ``FATHOM_URL`` set is sent to
the server before typer (and the command definitions) are even imported: the whole command then
costs an interpreter start, rich's console and one HTTP round trip. Everything else, and any
form of those commands this module does not recognise (``--home``, ``--help``, an invalid
value ...), goes to the typer application in :mod:`fathom.cli`, which answers it in full (the
same server, the same output, the same errors and exit codes).
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]

_MAX_K = {"search": 1000, "ask": 50}


class _Remote:
    """A parsed ``search``/``ask`` (a plain class: importing dataclasses costs ~13 ms)."""

    def __init__(
        self, command: str, text: str, k: int | None, filters: dict[str, str], as_json: bool
    ) -> None:
        self.command, self.text, self.k, self.filters, self.as_json = command, text, k, filters, as_json


def _parse(argv: list[str]) -> _Remote | None:
    """``search``/``ask`` with only QUERY, ``-k``/``--k N``, ``--filter K=V`` (search) and ``--json``."""
    if not argv or argv[0] not in _MAX_K:
        return None
    command, rest = argv[0], argv[1:]
    texts: list[str] = []
    k: int | None = None
    filters: dict[str, str] = {}
    as_json = False
    i = 0
    while i < len(rest):
        token = rest[i]
        if token == "--json":
            as_json = True
        elif token in ("-k", "--k") or (token == "--filter" and command == "search"):
            if i + 1 >= len(rest):
                return None
            value, i = rest[i + 1], i + 1
            if token == "--filter":
                key, sep, wanted = value.partition("=")
                if not sep or not key:
                    return None
                filters[key] = wanted
            else:
                if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= _MAX_K[command]:
                    return None
                k = int(value)
        elif token.startswith("-"):
            return None  # --home, --help, --k=N, anything else: the full CLI decides
        else:
            texts.append(token)
        i += 1
    if len(texts) != 1:
        return None
    if command == "search" and k is None:
        k = 10
    return _Remote(command, texts[0], k, filters, as_json)


def _run_remote(request: _Remote) -> int | None:
    """Run the request against FATHOM_URL; None when there is no server to ask."""
    from fathom.cli_output import print_answer, print_error, print_hits, print_json
    from fathom.errors import FathomError
    from fathom.remote import remote_from_environment

    try:
        client = remote_from_environment()
        if client is None:
            return None
        if request.command == "search":
            assert request.k is not None
            hits = client.search(request.text, k=request.k, filters=request.filters)
            if request.as_json:
                print_json({"hits": hits})
            else:
                print_hits(hits)
        else:
            answer = client.ask(request.text, k=request.k)
            if request.as_json:
                print_json(answer)
            else:
                print_answer(answer)
    except FathomError as exc:
        print_error(exc.code, exc.message)
        return 1
    return 0


def main() -> None:
    """Console entry point."""
    if os.environ.get("FATHOM_URL", "").strip():
        request = _parse(sys.argv[1:])
        if request is not None:
            try:
                code = _run_remote(request)
            except KeyboardInterrupt:
                sys.stderr.write("interrupted\n")
                sys.exit(130)
            if code is not None:
                sys.exit(code)
    from fathom.cli import main as cli_main

    cli_main()
