"""`fathom keys` and `fathom serve --help` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fathom import Fathom
from fathom.cli import app

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
