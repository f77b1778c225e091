"""Shared fixtures: the real packaged embedding model, fresh homes, and the shared data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fathom import Fathom
from fathom.config import DEFAULT_EMBEDDER
from fathom.embed import Embedder, create_embedder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip (fail under CI) when the shared folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"shared data not found at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real packaged all-MiniLM-L6-v2, loaded once per session."""
    return create_embedder(DEFAULT_EMBEDDER)


@pytest.fixture
def fathom(tmp_path: Path, embedder: Embedder) -> Iterator[Fathom]:
    with Fathom(home=tmp_path / "home", embedder=embedder) as instance:
        yield instance


@pytest.fixture
def hash_fathom(tmp_path: Path) -> Iterator[Fathom]:
    """A fathom with the model-free hash embedder, for tests about storage, not meaning."""
    with Fathom(home=tmp_path / "home", embedder="hash:64") as instance:
        yield instance


@pytest.fixture(scope="session")
def local_postgres() -> Iterator[Any]:
    """A PostgreSQL 18 + pgvector for the session, started as `fathom pg start` starts it.

    Skipped without the ``postgres-local`` extra (a failure under CI=true, where it is installed).
    """
    from tests.pg import session_server

    with session_server() as server:
        yield server


@pytest.fixture
def pg_url(local_postgres: Any) -> Iterator[str]:
    """A SQLAlchemy URL of a fresh database on the session's PostgreSQL 18 (dropped afterwards)."""
    from tests.pg import fresh_database

    with fresh_database(local_postgres) as url:
        yield url
