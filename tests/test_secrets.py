"""Credentials stored by mistake: each disguise is warned about, none is searchable, and
@environment values never reach the ledger."""

from __future__ import annotations

import pytest

import ledgerflow
from ledgerflow.client import Run, namespace
from ledgerflow.ledger import Ledger
from ledgerflow.secrets_check import index_text, suspected_secret
from ledgerflow.sharing import import_ledger

from .helpers import FLOWS, latest_run_id, query, run_flow

FLOW = FLOWS / "hostile" / "secrets_flow.py"


@pytest.mark.parametrize(("name", "value", "why"), [
    ("config", {"password": "hunter2"}, "key 'password'"),
    ("dsn", "postgresql://admin:hunter2@db.example.com/prod", "URL with a password"),
    ("env", {"PWD": "/home/me", "PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x"},
     "AWS_SECRET_ACCESS_KEY"),
    ("awsSecretAccessKey", "abc", "name suggests"),
    ("session", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w", "JWT"),
    ("notes", "x" * 3000 + " AKIAABCDEFGHIJKLMNOP", "AWS access key id"),
    ("env", {"PATH": "/bin", "HOME": "/home/me", "SHELL": "/bin/sh", "LANG": "C"},
     "process environment"),
    ("short", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "JWT"),
    ("unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "JWT"),
])  # fmt: skip
def test_each_disguise_is_detected(name, value, why):
    assert why in (suspected_secret(name, value) or "")


@pytest.mark.parametrize(("name", "value"), [
    ("token_count", 5), ("text", "tokens are words"), ("url", "https://example.com/a@b"),
    ("keys", ["password reset page"]), ("labels", {"PATH": "a label", "name": "x"}),
])  # fmt: skip
def test_ordinary_values_are_not(name, value):
    assert suspected_secret(name, value) is None


def test_the_search_index_never_holds_a_suspected_secret():
    assert index_text("settings", "PATH /usr/bin AWS_SECRET_ACCESS_KEY wJalr") == ""
    assert index_text("db_password", "hunter2") == ""
    assert index_text("notes", "meeting about tokens") == "meeting about tokens"


def test_a_flow_storing_secrets_warns_and_keeps_them_out_of_search_and_graph_info(
        db_path, tmp_path):  # fmt: skip
    proc = run_flow(FLOW, db=db_path)
    warned = {
        line.split("'")[1] for line in proc.stderr.splitlines() if "Warning: artifact" in line
    }
    assert warned == {"config", "dsn", "settings", "awsSecretAccessKey", "session", "notes"}
    namespace(None)
    run = Run(f"SecretsFlow/{latest_run_id(db_path, 'SecretsFlow')}", ledger=db_path)
    graph = run["start"].task["_graph_info"].data
    (env,) = [
        d for s in graph["steps"].values() for d in s["decorators"] if d["name"] == "environment"
    ]
    assert env["attributes"]["vars"] == {"DB_PASSWORD": None}
    assert "hunter2-env" not in query(db_path, "select graph_info from run")[0][0]
    # Copied into another ledger (and after doctor --repair rebuilds the index), the
    # suspects are stored but never found by search.
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    import_ledger(db_path, ledger=mine)
    for text in ("hunter2", "wJalrXUtnFEMIK7MDENG", "AKIAABCDEFGHIJKLMNOP", "eyJhbGciOiJIUzI1NiJ9"):
        assert ledgerflow.search(text, ledger=mine) == [], text
    assert ledgerflow.search("admin", ledger=mine) == []  # config and dsn both hold it


def test_the_environment_kept_whole_warns_without_a_credential_in_it(db_path):
    import os
    import subprocess
    import sys

    from ledgerflow.secrets_check import name_suggests_credential

    # An environment where no variable is named like a credential (it was missed then).
    env = {k: v for k, v in os.environ.items() if not name_suggests_credential(k)}
    flow = FLOWS / "hostile" / "environment_flow.py"
    proc = subprocess.run([sys.executable, str(flow), "--db", str(db_path), "--quiet", "run"],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warned = {line.split("'")[1] for line in proc.stderr.splitlines()
              if "Warning: artifact" in line}  # fmt: skip
    assert warned == {"env", "short_jwt", "unsigned_jwt"}
    assert "process environment" in proc.stderr
    assert ledgerflow.search("PATH", ledger=db_path, name="env") == []
    assert ledgerflow.search("eyJhbGciOiJub25lIn0", ledger=db_path) == []
