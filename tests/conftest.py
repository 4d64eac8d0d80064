"""Shared fixtures: every test gets its own ledger file, and flows run through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch a ledgerflow.db outside the test's own folder."""
    monkeypatch.setenv("LEDGERFLOW_DB", str(tmp_path / "ledgerflow.db"))
    monkeypatch.setenv("METAFLOW_USER", "tester")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledgerflow.db"
