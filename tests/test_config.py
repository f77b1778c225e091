from pathlib import Path
from typing import Any

import pytest

from fathom import ConfigError, load_settings
from fathom.config import Settings, default_home


def test_precedence_code_then_environment_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "fathom.toml").write_text('chunk_tokens = 100\nrrf_k = 10\nfusion = "weighted"\n')
    monkeypatch.setenv("FATHOM_RRF_K", "30")
    settings = load_settings(tmp_path, fusion="rrf")
    assert settings.chunk_tokens == 100  # file
    assert settings.rrf_k == 30  # environment beats file
    assert settings.fusion == "rrf"  # code beats both
    assert settings.home == tmp_path.resolve()


def test_home_from_environment_and_documented_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FATHOM_HOME", str(tmp_path / "h"))
    assert load_settings().home == (tmp_path / "h").resolve()
    monkeypatch.delenv("FATHOM_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "fathom"


def test_bad_settings_raise_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="chunk_tokens"):
        load_settings(tmp_path, chunk_tokens=-5)
    (tmp_path / "fathom.toml").write_text("not toml [")
    with pytest.raises(ConfigError, match="settings file"):
        load_settings(tmp_path)
    with pytest.raises(ConfigError, match="unknown embedder provider"):
        from fathom.embed import create_embedder

        create_embedder("nope:x")


def test_every_setting_is_documented():
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    undocumented = [name for name in Settings.model_fields if f"`{name}`" not in page]
    assert not undocumented, f"document these settings in docs/configuration.md: {undocumented}"


def _settings_error(**values: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    return str(caught.value)


def test_replica_settings_are_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    primary = "postgresql+psycopg://fathom@db-primary:5432/fathom"
    monkeypatch.setenv(
        "FATHOM_DATABASE_REPLICA_URLS",
        "postgresql+psycopg://fathom@db-r1:5432/fathom, postgresql+psycopg://fathom@db-r2:5432/fathom",
    )
    settings = load_settings(tmp_path, database_url=primary, index_backend="postgres")
    assert settings.database_replica_urls == [
        "postgresql+psycopg://fathom@db-r1:5432/fathom",
        "postgresql+psycopg://fathom@db-r2:5432/fathom",
    ]
    monkeypatch.delenv("FATHOM_DATABASE_REPLICA_URLS")
    replica = ["postgresql+psycopg://fathom@db-r1:5432/fathom"]
    # Replicas of SQLite, or without a database_url, or with the embedded backend: refused.
    assert "database_url" in _settings_error(
        home=tmp_path, index_backend="postgres", database_replica_urls=replica
    )
    assert "index_backend 'postgres'" in _settings_error(
        home=tmp_path, database_url=primary, database_replica_urls=replica
    )
    # A URL that is not PostgreSQL is named without its credentials.
    message = _settings_error(
        home=tmp_path,
        database_url=primary,
        index_backend="postgres",
        database_replica_urls=["mysql://fathom:hunter2@db-r1/fathom"],
    )
    assert "not a PostgreSQL URL" in message and "hunter2" not in message
    assert "twice" in _settings_error(
        home=tmp_path, database_url=primary, index_backend="postgres", database_replica_urls=replica * 2
    )
    assert "database_replica_max_lag_ms" in _settings_error(home=tmp_path, database_replica_max_lag_ms=-1)
