"""``fathom keys`` and ``fathom pg``: API keys of the HTTP service, and a local PostgreSQL.

Kept apart from :mod:`fathom.cli`, which registers both groups; like every command they import
the store only when they run.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fathom.cli_common import HomeOption, JsonOption, err, errors, open_home, out
from fathom.domain import ApiKeyInfo
from fathom.errors import InvalidQuery

__all__ = ["keys_app", "pg_app"]


keys_app = typer.Typer(
    name="keys",
    help="API keys of the HTTP service: each key is a tenant, a user, groups and a role "
    "(reader, editor, admin), optionally with scopes and an expiry.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, option: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (``0`` alone is zero) as a timedelta.

    Raises:
        InvalidQuery: anything else (``key.invalid_duration``).
    """
    if text.strip() == "0":
        return timedelta(0)
    found = _DURATION.match(text.lower())
    if found is None:
        raise InvalidQuery(
            f"{option} takes a number and a unit (s, m, h, d or w), e.g. 30d", code="key.invalid_duration"
        )
    return timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


def _expiry(expires_in: str | None, expires_at: str | None) -> datetime | None:
    """The expiry from ``--expires-in`` or ``--expires-at`` (an ISO 8601 time; UTC when no zone)."""
    if expires_in and expires_at:
        raise InvalidQuery("give --expires-in or --expires-at, not both", code="key.invalid_expiry")
    if expires_in:
        return datetime.now(UTC) + parse_duration(expires_in, "--expires-in")
    if expires_at:
        try:
            moment = datetime.fromisoformat(expires_at)
        except ValueError:
            raise InvalidQuery(
                "--expires-at takes an ISO 8601 time, e.g. 2027-01-31 or 2027-01-31T18:00:00+01:00",
                code="key.invalid_expiry",
            ) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def _print_key(key: str, info: ApiKeyInfo, as_json: bool, what: str) -> None:
    if as_json:
        out.print_json(json.dumps({"key": key, **info.to_dict()}))
        return
    out.print(key, highlight=False)
    expiry = f", expires {info.expires_at[:19]}" if info.expires_at else ""
    err.print(
        f"{what} {info.key_id} for tenant {escape(info.tenant)} (role {info.role}{expiry}): "
        "store it now, it is not shown again"
    )


@keys_app.command("create")
def keys_create(
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="The tenant the key belongs to (default: the tenant setting, 'default', which "
            "`fathom ingest` writes to).",
            show_default=False,
        ),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="The user the key acts as.")] = None,
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated groups, e.g. eng,ops.")] = "",
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="reader (search and ask), editor (also add documents and change its own) or admin "
            "(everything in its tenant). Default: editor.",
        ),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="The same as --role admin.")] = False,
    scopes: Annotated[
        str | None,
        typer.Option(
            "--scopes",
            help="Comma-separated subset of search,ask,write,admin the key may be used for; e.g. "
            "search,ask for a read-only integration. Default: all.",
        ),
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d, 12h, 2w. Default: never expires.")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="Expiry as an ISO 8601 time (UTC when no zone).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: only its hash is stored.

    Warns when the key's tenant has no documents yet (its searches would find nothing).
    """
    group_list = [g.strip() for g in groups.split(",") if g.strip()]
    scope_list = None if scopes is None else [s.strip() for s in scopes.split(",") if s.strip()]
    with errors():
        expiry = _expiry(expires_in, expires_at)
        fathom = open_home(home)
        chosen = tenant or fathom.settings.tenant
        key, info = fathom.keys.create(
            tenant=chosen,
            user=user,
            groups=group_list,
            admin=admin,
            role=role,
            scopes=scope_list,
            expires_at=expiry,
        )
        empty = fathom.store.counts(chosen)[0] == 0
    _print_key(key, info, as_json, "key")
    if empty:
        err.print(
            f"[yellow]warning[/yellow] tenant {escape(chosen)!r} has no documents yet: this key finds "
            f"nothing until some are added (`fathom ingest` adds to tenant "
            f"{escape(fathom.settings.tenant)!r}; FATHOM_TENANT={escape(chosen)} fathom ingest ... adds "
            "to this one, and so do uploads with this key)"
        )


@keys_app.command("list")
def keys_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List API keys (ids, prefixes, principals, roles, scopes, expiry; never the keys)."""
    from rich.table import Column, Table

    with errors():
        keys = open_home(home, create=False).keys.list()
    if as_json:
        out.print_json(json.dumps({"keys": [k.to_dict() for k in keys]}))
        return
    # At least 12 characters of the id even on a narrow terminal: what `keys revoke` is given.
    id_column = Column("id", min_width=13)
    table = Table(
        id_column, "prefix", "tenant", "user", "groups", "role", "scopes", "created", "expires", "state"
    )
    for k in keys:
        state = "revoked" if k.revoked else "expired" if k.expired else ""
        if not state and k.previous_valid_until:
            state = f"rotated; old key until {k.previous_valid_until[:19]}"
        table.add_row(
            k.key_id,
            k.prefix,
            escape(k.tenant),
            escape(k.user or ""),
            escape(",".join(k.groups)),
            k.role,
            "all" if k.scopes is None else ",".join(k.scopes),
            k.created_at[:19],
            (k.expires_at or "never")[:19],
            state,
        )
    out.print(table)


KeyArgument = Annotated[
    str,
    typer.Argument(
        help="The key's id, prefix, or the start of its id (at least 4 characters; from `fathom keys list`)."
    ),
]


@keys_app.command("rotate")
def keys_rotate(
    key: KeyArgument,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="How long the old key keeps working, e.g. 24h, 7d; 0 stops it at once.",
        ),
    ] = "24h",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a key a new secret and print it once; the key keeps its id, role, scopes and expiry."""
    with errors():
        period = parse_duration(grace, "--grace")
        new_key, info = open_home(home, create=False).keys.rotate(key, grace=period)
    _print_key(new_key, info, as_json, "rotated key")
    if not as_json:
        until = f"until {info.previous_valid_until[:19]} UTC" if info.previous_valid_until else "no longer"
        err.print(f"the old key works {until}")


@keys_app.command("revoke")
def keys_revoke(key: KeyArgument, home: HomeOption = None) -> None:
    """Revoke an API key; requests with it (and with a rotated key's old secret) fail from now on."""
    with errors():
        info = open_home(home, create=False).keys.revoke(key)
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
