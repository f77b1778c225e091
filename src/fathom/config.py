"""One typed settings object for all of fathom.

Settings come from, highest priority first: arguments passed in code (or CLI
flags), environment variables ``FATHOM_<NAME>``, the settings file
``$FATHOM_HOME/fathom.toml``, and the defaults below. Nothing else in fathom
reads the environment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fathom.errors import ConfigError

__all__ = ["DEFAULT_EMBEDDER", "Settings", "default_home", "load_settings"]

DEFAULT_EMBEDDER = "sentence-transformers:all-MiniLM-L6-v2"
SETTINGS_FILE = "fathom.toml"


def default_home() -> Path:
    """Where fathom keeps its data when neither ``--home`` nor ``FATHOM_HOME`` is given.

    ``$XDG_DATA_HOME/fathom``, which is ``~/.local/share/fathom`` on most systems.
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "fathom"


class Settings(BaseSettings):
    """Every setting fathom has. Each is documented in ``docs/configuration.md``."""

    model_config = SettingsConfigDict(env_prefix="FATHOM_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="Folder holding the store and indexes.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store of record; default: SQLite at HOME/fathom.db.",
    )
    tenant: str = Field(default="default", description="Tenant used by the embedded CLI and Python API.")
    embedder: str = Field(
        default=DEFAULT_EMBEDDER,
        description="Embedding model: 'sentence-transformers:NAME_OR_PATH' or 'hash:DIM' (tests only).",
    )
    query_precision: Literal["float32", "int8"] = Field(
        default="float32",
        description="Precision of the model that embeds queries on CPU: 'int8' is about twice as fast "
        "and slightly less exact; document vectors are always float32.",
    )
    device: str = Field(default="cpu", description="Torch device for models: 'cpu', 'cuda', 'auto'.")
    embed_batch_size: int = Field(default=64, ge=1, le=4096, description="Chunks per embedding batch.")
    chunk_tokens: int = Field(default=160, ge=16, le=2048, description="Target chunk size in model tokens.")
    chunk_overlap: int = Field(default=32, ge=0, le=512, description="Tokens repeated between chunks.")
    fusion: Literal["rrf", "zscore", "weighted"] = Field(
        default="rrf",
        description="How lexical and dense results are fused: reciprocal ranks, z-normalised scores, "
        "or min-max normalised scores.",
    )
    dense_min_spread: float = Field(
        default=0.04,
        ge=0,
        description="z-score fusion divides the dense list's cosine scores by at least this spread.",
    )
    rrf_k: int = Field(default=60, ge=1, description="The k constant of reciprocal rank fusion.")
    lexical_weight: float = Field(default=1.0, ge=0, description="Weight of the BM25 list in fusion.")
    dense_weight: float = Field(default=1.0, ge=0, description="Weight of the dense list in fusion.")
    candidates: int = Field(default=50, ge=1, le=1000, description="Candidates each retriever returns.")
    reranker: str | None = Field(
        default=None,
        description="Cross-encoder that rescores the best fused candidates, e.g. "
        "'cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2' (a name in the local model cache or a "
        "folder); off when unset.",
    )
    rerank_depth: int = Field(
        default=30, ge=1, le=1000, description="Fused candidates the reranker rescores."
    )
    exact_search_below: int = Field(
        default=50_000, ge=0, description="Dense search is exact (brute force) below this many chunks."
    )
    lexical_context: bool = Field(
        default=True,
        description="Index each chunk's document title and heading path in the same BM25 field as its "
        "text (changing it rebuilds the lexical index on next open).",
    )
    title_boost: float = Field(
        default=0.0,
        ge=0,
        description="Extra BM25 weight of the title field (title words already count in the chunk text).",
    )
    heading_boost: float = Field(
        default=0.0,
        ge=0,
        description="Extra BM25 weight of the heading-path field (headings already count in the chunk text).",
    )
    max_file_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1, description="Files larger than this are refused at ingest."
    )
    max_query_chars: int = Field(default=2000, ge=1, description="Longer queries are refused.")
    answer_chunks: int = Field(default=6, ge=1, le=50, description="Top chunks the answerer reads.")
    answer_sentences: int = Field(default=3, ge=1, le=20, description="Most sentences in an answer.")
    min_support: float = Field(
        default=0.45,
        ge=0,
        le=1,
        description="Support score below which the answerer abstains instead of answering.",
    )
    log_level: str = Field(default="WARNING", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(default=False, description="Write logs as JSON lines to stderr.")

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return Path(value).expanduser().resolve()
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'fathom.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: code arguments, then environment, then the settings file, then defaults.

    Raises:
        ConfigError: a setting is invalid or the settings file cannot be read.
    """
    chosen_home = Path(home) if home is not None else None
    if chosen_home is None and os.environ.get("FATHOM_HOME"):
        chosen_home = Path(os.environ["FATHOM_HOME"])
    if chosen_home is None:
        chosen_home = default_home()
    chosen_home = chosen_home.expanduser().resolve()

    file_values: dict[str, Any] = {}
    settings_file = chosen_home / SETTINGS_FILE
    if settings_file.is_file():
        try:
            file_values = tomllib.loads(settings_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read settings file {settings_file}: {exc}") from None
    # The environment outranks the file: drop file keys that an environment variable sets.
    file_values = {k: v for k, v in file_values.items() if f"FATHOM_{k.upper()}" not in os.environ}
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}, "home": chosen_home}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
