"""`fathom keys` and `fathom serve --help` through the real command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fathom import Fathom
from fathom.cli import app
from fathom.errors import KeyExpired, Unauthorized
from fathom.store.schema import ApiKeyRow

runner = CliRunner()


def test_keys_create_list_revoke(tmp_path: Path):
    home = str(tmp_path / "home")
    created = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--user", "alice", "--groups", "eng, ops", "--home", home]
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("fth_") and len(key) > 40
    with Fathom(home=home, embedder="hash:64") as fathom:
        key_id, principal = fathom.keys.authenticate(key)
    assert (principal.tenant, principal.user, principal.groups, principal.admin) == (
        "acme",
        "alice",
        ("eng", "ops"),
        False,
    )

    listed = runner.invoke(app, ["keys", "list", "--json", "--home", home])
    keys = json.loads(listed.stdout)["keys"]
    assert [k["key_id"] for k in keys] == [key_id] and key not in listed.stdout
    assert keys[0]["revoked"] is False

    assert runner.invoke(app, ["keys", "revoke", keys[0]["prefix"], "--home", home]).exit_code == 0
    assert json.loads(runner.invoke(app, ["keys", "list", "--json", "--home", home]).stdout)["keys"][0][
        "revoked"
    ]
    missing = runner.invoke(app, ["keys", "revoke", "nope", "--home", home])
    assert missing.exit_code == 1 and "key.not_found" in missing.output


def test_serve_help_names_its_options():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--home"):
        assert option in result.output


def _keys(home: str) -> list[dict[str, Any]]:
    listed = runner.invoke(app, ["keys", "list", "--json", "--home", home])
    assert listed.exit_code == 0, listed.output
    keys: list[dict[str, Any]] = json.loads(listed.stdout)["keys"]
    return keys


def test_keys_get_a_role_and_scopes_and_the_admin_flag_is_the_admin_role(tmp_path: Path):
    home = str(tmp_path / "home")
    base = ["keys", "create", "--tenant", "acme", "--home", home]
    assert runner.invoke(app, [*base, "--user", "root", "--admin"]).exit_code == 0
    assert runner.invoke(app, [*base, "--user", "ann"]).exit_code == 0
    assert (
        runner.invoke(app, [*base, "--user", "bot", "--role", "reader", "--scopes", "search, ask"]).exit_code
        == 0
    )
    assert [(k["user"], k["role"], k["admin"], k["scopes"]) for k in _keys(home)] == [
        ("root", "admin", True, None),
        ("ann", "editor", False, None),
        ("bot", "reader", False, ["ask", "search"]),
    ]
    table = runner.invoke(app, ["keys", "list", "--home", home], env={"COLUMNS": "250"})
    assert "reader" in table.stdout and "ask,search" in table.stdout
    for bad, code in (
        (["--role", "owner"], "key.invalid_role"),
        (["--role", "reader", "--admin"], "key.invalid_role"),
        (["--scopes", "search,delete"], "key.invalid_scope"),
        (["--scopes", ","], "key.invalid_scope"),
        (["--expires-in", "soon"], "key.invalid_duration"),
        (["--expires-at", "yesterday"], "key.invalid_expiry"),
        (["--expires-at", "2020-01-01"], "key.invalid_expiry"),
        (["--expires-in", "1d", "--expires-at", "2999-01-01"], "key.invalid_expiry"),
    ):
        refused = runner.invoke(app, [*base, *bad])
        assert refused.exit_code == 1 and code in refused.output, (bad, refused.output)
    assert len(_keys(home)) == 3


def test_a_key_expires(tmp_path: Path):
    home = str(tmp_path / "home")
    base = ["keys", "create", "--tenant", "acme", "--home", home, "--json"]
    week = json.loads(runner.invoke(app, [*base, "--expires-in", "7d"]).stdout)
    dated = json.loads(runner.invoke(app, [*base, "--expires-at", "2999-01-31T18:00:00+01:00"]).stdout)
    expires = datetime.fromisoformat(week["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < expires <= timedelta(days=7)
    assert datetime.fromisoformat(dated["expires_at"]) == datetime(2999, 1, 31, 17, tzinfo=UTC)
    with Fathom(home=home, embedder="hash:64") as fathom:
        assert fathom.keys.authenticate(week["key"])[0] == week["key_id"]
        with fathom.store.session() as session:  # a week later
            row = session.get(ApiKeyRow, week["key_id"])
            assert row is not None
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        with pytest.raises(KeyExpired) as expired:
            fathom.keys.authenticate(week["key"])
        assert expired.value.code == "auth.key_expired"
    assert [k["expired"] for k in _keys(home)] == [True, False]
    refused = runner.invoke(app, ["keys", "rotate", week["key_id"], "--home", home])
    assert refused.exit_code == 1 and "key.expired" in refused.output


def test_rotation_gives_a_new_secret_and_the_old_one_works_for_the_grace_period(tmp_path: Path):
    home = str(tmp_path / "home")
    created = json.loads(
        runner.invoke(
            app,
            [
                "keys",
                "create",
                "--tenant",
                "acme",
                "--user",
                "ann",
                "--role",
                "reader",
                "--home",
                home,
                "--json",
            ],
        ).stdout
    )
    old = created["key"]
    rotated = runner.invoke(
        app, ["keys", "rotate", created["key_id"][:8], "--grace", "1h", "--home", home, "--json"]
    )
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["key_id"] == created["key_id"] and new["key"] != old and new["prefix"] != created["prefix"]
    assert new["role"] == "reader" and new["previous_valid_until"] is not None
    with Fathom(home=home, embedder="hash:64") as fathom:
        for key in (old, new["key"]):  # both work during the grace period, as the same key
            key_id, principal = fathom.keys.authenticate(key)
            assert (key_id, principal.user, principal.role) == (created["key_id"], "ann", "reader")
        with fathom.store.session() as session:  # the hour passes
            row = session.get(ApiKeyRow, created["key_id"])
            assert row is not None
            row.previous_valid_until = datetime.now(UTC) - timedelta(seconds=1)
        with pytest.raises(Unauthorized) as refused:
            fathom.keys.authenticate(old)
        assert refused.value.code == "auth.invalid_key"
        assert fathom.keys.authenticate(new["key"])[0] == created["key_id"]

    # --grace 0 stops the old secret at once.
    again = json.loads(
        runner.invoke(app, ["keys", "rotate", new["prefix"], "--grace", "0", "--home", home, "--json"]).stdout
    )
    assert again["previous_valid_until"] is None
    with Fathom(home=home, embedder="hash:64") as fathom:
        with pytest.raises(Unauthorized):
            fathom.keys.authenticate(new["key"])
        fathom.keys.authenticate(again["key"])
        # Revoking stops the new secret and any old one still in its grace period.
        rotated_key, _ = fathom.keys.rotate(created["key_id"])
        fathom.keys.revoke(created["key_id"])
        for key in (again["key"], rotated_key):
            with pytest.raises(Unauthorized):
                fathom.keys.authenticate(key)
    refused = runner.invoke(app, ["keys", "rotate", created["key_id"], "--home", home])
    assert refused.exit_code == 1 and "key.revoked" in refused.output


def test_keys_are_named_by_an_unambiguous_start_of_their_id(tmp_path: Path):
    home = str(tmp_path / "home")
    with Fathom(home=home, embedder="hash:64") as fathom:
        keys = [fathom.keys.create(tenant="acme", user=f"u{n}")[1] for n in range(8)]
    # Fewer than 4 characters is too easy to mistype: never taken as the start of an id.
    too_short = runner.invoke(app, ["keys", "revoke", keys[0].key_id[:3], "--home", home])
    assert too_short.exit_code == 1 and "key.not_found" in too_short.output
    # Two ids that share their first 6 digits.
    with Fathom(home=home, embedder="hash:64") as fathom, fathom.store.session() as session:
        first, second = (session.get(ApiKeyRow, k.key_id) for k in keys[:2])
        assert first is not None and second is not None
        first.id, second.id = "abcdef" + first.id[6:], "abcdef" + second.id[6:]
    ambiguous = runner.invoke(app, ["keys", "revoke", "ABCDEF", "--home", home])
    assert ambiguous.exit_code == 1 and "key.ambiguous" in ambiguous.output
    assert not any(k["revoked"] for k in _keys(home))
    target = keys[5].key_id
    revoked = runner.invoke(
        app, ["keys", "revoke", target[:12] + "…", "--home", home]
    )  # as a narrow table cuts it
    assert revoked.exit_code == 0 and target in revoked.stdout
    assert [k["key_id"] for k in _keys(home) if k["revoked"]] == [target]
