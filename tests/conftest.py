"""Shared fixtures: the real packaged embedding model, fresh homes, and the shared data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
