"""What a run's fixed start-up was made cheaper by keeps its behaviour: trust.json's text is
the one json.dumps gives each record (written through one reusable C encoder now)."""

from __future__ import annotations

import json

import pytest

from ledgerflow import trust_file


def _per_record(doc: dict) -> str:
    """trust.json as it was written before: one json.dumps call per record."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            rows = ",\n  ".join(json.dumps(entry) for entry in value)
            parts.append(f"{json.dumps(key)}: [\n  {rows}\n ]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


@pytest.mark.parametrize("doc", [
    {"own": [{"ledger_id": "a" * 32, "path": "/home/me/ledgerflow.db", "file": [64769, 123]},
             {"ledger_id": "b", "path": "/tmp/x y/\u00e9\u4e2d\U0001f600.db", "file": None}],
     "version": 2},
    {"own": [], "trusted": [{"path": "a\nb\t\"c\"\\", "ledger_id": "x",
                             "runs": {"1": ["sha", 1.5, float("inf"), -0.0, 10**30, True]},
                             "trusted_at": "2026-12-06T00:00:00+00:00"}],
     "version": 2, "extra": {"nested": [None, False]}},
    {"own": [{"path": "\ud800 lone surrogate", "file": [1, 2], "ledger_id": ""}]},
])  # fmt: skip
def test_the_trust_store_text_is_what_json_dumps_gives_each_record(doc):
    assert trust_file._dumps(doc) == _per_record(doc)
    assert json.loads(trust_file._dumps(doc)).keys() == doc.keys()
