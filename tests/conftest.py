"""Shared fixtures: every test gets its own ledger file, and flows run through the real CLI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# One ~/.ledgerflow (holding this "machine's" id) for the session, never the real one. Set
# at import, before any fixture, so module-scoped fixtures and their subprocesses share it.
os.environ["LEDGERFLOW_HOME"] = tempfile.mkdtemp(prefix="ledgerflow-home-")


@pytest.fixture(autouse=True)
def _isolated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch a ledgerflow.db outside the test's own folder."""
    monkeypatch.delenv("LEDGERFLOW_TRUST", raising=False)
    monkeypatch.delenv("LEDGERFLOW_MACHINE_ID", raising=False)
    monkeypatch.setenv("LEDGERFLOW_DB", str(tmp_path / "ledgerflow.db"))
    monkeypatch.setenv("METAFLOW_USER", "tester")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _close_ledgers(tmp_path: Path):
    """Close the ledgers a test opened in this process (the Client API keeps one open per
    file, as a notebook would): a whole serial session would otherwise hold ~1,100 file
    descriptors by its end."""
    yield
    from ledgerflow.ledger import Ledger

    for key in list(Ledger._open):
        if Path(key[0]).is_relative_to(tmp_path):
            Ledger.forget(key[0])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledgerflow.db"


@pytest.fixture(autouse=True)
def _fresh_client_state():
    """The Client API's namespace and ledger choice are process-wide: reset them around
    every test, as a new Python process would start."""
    from ledgerflow import ledger_choice
    from ledgerflow.client import context

    context._namespace, ledger_choice._ledger, ledger_choice._readonly = False, None, None
    yield
    context._namespace, ledger_choice._ledger, ledger_choice._readonly = False, None, None


@pytest.fixture(autouse=True)
def _no_trust_granted():
    """`ledgerflow.trust()` lasts for the process: forget it between tests. (The trust
    store itself is the session's, in LEDGERFLOW_HOME, so ledgers made by module fixtures
    stay this test user's own.)"""
    from ledgerflow import trust_store as trust

    yield
    trust._trust_all = False
    trust._trusted_paths.clear()
