"""``fathom keys`` and ``fathom pg``: API keys of the HTTP service, and a local PostgreSQL.

Kept apart from :mod:`fathom.cli`, which registers both groups; like every command they import
the store only when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fathom.cli_common import HomeOption, JsonOption, err, errors, open_home, out

__all__ = ["keys_app", "pg_app"]


keys_app = typer.Typer(
    name="keys",
    help="API keys of the HTTP service: each key is a tenant, a user and groups.",
    no_args_is_help=True,
)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key belongs to.")],
    user: Annotated[str | None, typer.Option("--user", help="The user the key acts as.")] = None,
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated groups, e.g. eng,ops.")] = "",
    admin: Annotated[
        bool, typer.Option("--admin", help="Sees and deletes every document of its tenant.")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: only its hash is stored."""
    group_list = [g.strip() for g in groups.split(",") if g.strip()]
    with errors():
        key, info = open_home(home).keys.create(tenant=tenant, user=user, groups=group_list, admin=admin)
    if as_json:
        out.print_json(json.dumps({"key": key, **info.to_dict()}))
        return
    out.print(key, highlight=False)
    err.print(f"key {info.key_id} for tenant {escape(tenant)}: store it now, it is not shown again")


@keys_app.command("list")
def keys_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List API keys (ids, prefixes, principals; never the keys)."""
    from rich.table import Table

    with errors():
        keys = open_home(home).keys.list()
    if as_json:
        out.print_json(json.dumps({"keys": [k.to_dict() for k in keys]}))
        return
    table = Table("id", "prefix", "tenant", "user", "groups", "admin", "created", "revoked")
    for k in keys:
        table.add_row(
            k.key_id,
            k.prefix,
            escape(k.tenant),
            escape(k.user or ""),
            escape(",".join(k.groups)),
            "yes" if k.admin else "",
            k.created_at[:19],
            "revoked" if k.revoked else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (from `fathom keys list`).")],
    home: HomeOption = None,
) -> None:
    """Revoke an API key; requests with it fail from now on."""
    with errors():
        info = open_home(home).keys.revoke(key)
    out.print(f"revoked {info.key_id}")


pg_app = typer.Typer(
    name="pg",
    help="A local PostgreSQL 18 with pgvector for trying the postgres backend (extra: postgres-local).",
    no_args_is_help=True,
)

PgDirOption = Annotated[
    Path, typer.Option("--dir", help="Folder of the server's files (created on first start).")
]


@pg_app.command("start")
def pg_start(
    directory: PgDirOption,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, help="Port on 127.0.0.1 (default: the last one, else a free one)."
        ),
    ] = None,
) -> None:
    """Start a local PostgreSQL with pgvector (initialised on first use) and print its database URL.

    It listens on 127.0.0.1 only and trusts every local connection: for tests and trials on one
    machine. Use the URL as FATHOM_DATABASE_URL, with FATHOM_INDEX_BACKEND=postgres.
    """
    from fathom.logs import configure_logging
    from fathom.store import local_postgres

    configure_logging("WARNING")
    with errors():
        server = local_postgres.start(directory, port)
    out.print(server.url, highlight=False, soft_wrap=True)


@pg_app.command("stop")
def pg_stop(directory: PgDirOption) -> None:
    """Stop the local PostgreSQL started with `fathom pg start --dir DIR`."""
    from fathom.logs import configure_logging
    from fathom.store import local_postgres

    configure_logging("WARNING")
    with errors():
        stopped = local_postgres.stop(directory)
    err.print("stopped" if stopped else "not running")
