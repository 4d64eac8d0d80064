"""Hostile ledgers against trust itself (issue 30 items 1-3): a version-0 file passing for a
new one, a file swapped in under a trusted path or over one of the user's own ledgers, and
the refusal's advice. Each test uses a trust store of its own (the user's), so what another
test trusted never counts here; the "malicious code" appends to a marker file, which must
never appear."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ledgerflow.ledger import Ledger

from . import test_hostile as hostile
from .helpers import latest_run_id, query, run_flow
from .test_hostile import FLOW, add_blob, cli, evil_pickle, one_line, sql

their_ledger, marker = hostile.their_ledger, hostile.marker  # the corpus's fixtures


@pytest.fixture(autouse=True)
def my_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "my-trust.json"
    monkeypatch.setenv("LEDGERFLOW_TRUST_STORE", str(path))
    return path


def copy_of(their_ledger: Path, to: Path) -> Path:
    shutil.copy(their_ledger, to)
    return to


def plant(db: Path, marker: Path) -> None:
    """The attacker's edit: every `shape` (a pickle) becomes code that writes the marker."""
    sha = add_blob(db, evil_pickle(marker), "pickle")
    sql(db, "update artifact set sha = ?, encoding = 'pickle' where name = 'shape'", (sha,))


def shape_of(db: Path, run_id: str | None = None) -> subprocess.CompletedProcess:
    """`ledgerflow show --load` of the first work task's `shape` (of the latest run, or of
    `run_id`), in a process of its own."""
    run_id = run_id or latest_run_id(db, "SharedFlow")
    (task_id,) = query(db, "select task_id from tasks where run_id = ? and step = 'work' "
                           "order by task_id limit 1", (run_id,))[0]  # fmt: skip
    return cli("show", f"SharedFlow/{run_id}/work/{task_id}/shape", "--load", db=db)


def loads(db: Path, run_id: str | None = None) -> bool:
    proc = shape_of(db, run_id)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


# -- 1. a version-0 file with every table is foreign, never new --------------------------------


def unversion(db: Path) -> None:
    """Drop what a writer would recreate (views, indexes, search tables), reset the version."""
    conn = sqlite3.connect(db)
    objects = conn.execute("select type, name from sqlite_master where type in ('view', "
                           "'index', 'trigger') and name not like 'sqlite_%'").fetchall()  # fmt: skip
    for kind, name in objects:
        conn.execute(f'drop {kind} if exists "{name}"')
    for fts in ("artifact_fts", "task_fts"):
        conn.execute(f"drop table if exists {fts}")
    conn.execute("pragma user_version = 0")
    conn.commit()
    conn.close()


def test_a_version_0_file_with_every_table_is_foreign_not_new(their_ledger, tmp_path, marker,
                                                              my_store):  # fmt: skip
    received = copy_of(their_ledger, tmp_path / "received.db")
    plant(received, marker)
    unversion(received)
    before = received.read_bytes()
    other = copy_of(their_ledger, tmp_path / "other.db")
    for args in (["doctor", "--repair"], ["import", str(other)], ["runs"], ["doctor"],
                 ["sql", "select 1"], ["search", "x"], ["show", "SharedFlow"]):  # fmt: skip
        error = one_line(cli(*args, db=received))
        assert "user_version 0" in error and "run a flow" not in error, (args, error)
    flow_run = run_flow(FLOW, db=received, check=1)
    assert "user_version 0" in flow_run.stderr and "Traceback" not in flow_run.stderr
    assert received.read_bytes() == before
    assert "own" not in (json.loads(my_store.read_text()) if my_store.exists() else {})
    with pytest.raises(Exception, match="user_version 0"):
        Ledger(received)
    assert received.read_bytes() == before


def test_a_file_with_no_tables_is_still_new(tmp_path, my_store):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert "run a flow" in one_line(cli("runs", db=empty))  # a reader: nothing to read yet
    Ledger(empty).close()
    assert json.loads(my_store.read_text())["own"][0]["path"] == str(empty.resolve())


# -- 2. trust binds to what the user trusted, not to a path or an id ---------------------------


def test_a_file_swapped_in_under_a_trusted_path_is_not_trusted(their_ledger, tmp_path, marker):
    trusted = copy_of(their_ledger, tmp_path / "results.db")
    assert cli("trust", str(trusted), db=tmp_path / "mine.db").returncode == 0
    assert loads(trusted)
    # The sender's next file copies the ledger id (and every other byte) of the trusted one,
    # with one pickle changed: saved over it (a new file), then written into it in place.
    evil = copy_of(their_ledger, tmp_path / "evil.db")
    plant(evil, marker)
    os.replace(evil, trusted)
    error = one_line(shape_of(trusted))
    assert "did not hold as it is now when you trusted" in error
    assert f"ledgerflow trust {trusted}" in error
    evil = copy_of(their_ledger, tmp_path / "evil.db")
    plant(evil, marker)
    copy_of(their_ledger, trusted)
    assert loads(trusted)  # what was trusted, back again
    shutil.copyfile(evil, trusted)  # in place: same inode, same id
    assert "did not hold as it is now" in one_line(shape_of(trusted))


def test_a_file_saved_over_my_own_ledger_with_its_id_is_not_mine(their_ledger, tmp_path, marker):
    mine = tmp_path / "mine.db"
    run_flow(FLOW, db=mine)
    assert loads(mine)  # my own runs load without trust
    (my_id,) = query(mine, "select value from meta where key = 'ledger_id'")[0]
    evil = copy_of(their_ledger, tmp_path / "evil.db")
    plant(evil, marker)
    sql(evil, "update meta set value = ? where key = 'ledger_id'", (my_id,))  # copied id
    os.replace(evil, mine)
    assert "a ledger you have not trusted" in one_line(shape_of(mine))


# -- 3. trust is about sources; the advice never opens the door --------------------------------


def test_the_refusal_names_the_source_and_never_advises_trusting_my_ledger(their_ledger,
                                                                          tmp_path, marker):  # fmt: skip
    mine = tmp_path / "mine.db"
    run_flow(FLOW, db=mine)
    sent = copy_of(their_ledger, tmp_path / "sent.db")
    plant(sent, marker)
    (their_id,) = query(sent, "select value from meta where key = 'ledger_id'")[0]
    theirs = latest_run_id(sent, "SharedFlow")
    assert cli("import", str(sent), db=mine).returncode == 0
    error = one_line(shape_of(mine, theirs))
    assert f"from ledger {their_id}" in error and f"trust --source {their_id}" in error
    assert f"ledgerflow trust {mine}" not in error and "--trust" not in error
    # Trusting my own ledger is refused, and says what to do instead.
    refused = one_line(cli("trust", str(mine), db=mine))
    assert "your own ledger" in refused and "trust --list" in refused
    from ledgerflow import trust
    from ledgerflow.exceptions import LedgerflowError

    with pytest.raises(LedgerflowError, match="your own ledger"):
        trust(mine, remember=True)
    second = copy_of(their_ledger, tmp_path / "second.db")
    sql(second, "update meta set value = 'another-source' where key = 'ledger_id'")
    sql(second, "update run set run_id = run_id || '7'")
    plant(second, marker)
    assert cli("import", str(second), db=mine).returncode == 0
    assert not loads(mine, theirs + "7")
    assert loads(mine)  # my own run


def test_import_then_trust_ends_as_trust_then_import(their_ledger, tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    for mine in (first, second):
        Ledger(mine).close()
    # import, then trust
    again = copy_of(their_ledger, tmp_path / "again.db")
    assert cli("import", str(again), db=second).returncode == 0
    assert not loads(second)
    done = cli("trust", str(again), db=second)
    assert done.returncode == 0 and "1 run(s) imported into" in done.stdout
    assert loads(second)
    assert cli("trust", "--revoke", str(again), db=second).returncode == 0
    assert not loads(second)
    # trust, then import: the same end
    sent = copy_of(their_ledger, tmp_path / "sent.db")
    assert cli("trust", str(sent), db=first).returncode == 0
    assert cli("import", str(sent), db=first).returncode == 0
    assert loads(first)
    assert query(first, "select trusted from imported_run") == [(1,)]


def test_trust_list_source_and_revoke(their_ledger, tmp_path):
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    sent = copy_of(their_ledger, tmp_path / "sent.db")
    (their_id,) = query(sent, "select value from meta where key = 'ledger_id'")[0]
    assert cli("import", str(sent), db=mine).returncode == 0
    assert not loads(mine)
    listed = cli("trust", "--list", "--json", db=mine)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["sources"] == [
        {"source": their_id, "runs": 1, "trusted": 0, "imported_at": json.loads(
            listed.stdout)["sources"][0]["imported_at"]}]  # fmt: skip
    granted = cli("trust", "--source", their_id, db=mine)
    assert granted.returncode == 0 and "trusted  SharedFlow/" in granted.stdout
    assert loads(mine)
    assert "1 trusted" in cli("trust", "--list", db=mine).stdout
    assert cli("trust", "--revoke", "--source", their_id, db=mine).returncode == 0
    assert not loads(mine)
    assert "was imported from nobody" in one_line(cli("trust", "--source", "nobody", db=mine))
    assert cli("trust", str(sent), db=mine).returncode == 0
    listed = json.loads(cli("trust", "--list", "--json", db=mine).stdout)
    assert [f["path"] for f in listed["files"]] == [str(sent.resolve())]
    assert "not a file you trust" in cli("trust", "--revoke", str(mine), db=mine).stderr
    assert cli("trust", db=mine).returncode == 2


def test_an_own_ledger_recorded_by_an_earlier_version_is_bound_on_first_use(tmp_path, my_store):
    mine = tmp_path / "mine.db"
    run_flow(FLOW, db=mine)
    doc = json.loads(my_store.read_text())
    for entry in doc["own"]:
        del entry["file"]  # as version 1 of the store recorded it: id and path only
    doc["version"] = 1
    my_store.write_text(json.dumps(doc))
    assert loads(mine)
    assert json.loads(my_store.read_text())["own"][0]["file"] is not None
    copy = tmp_path / "copy.db"
    shutil.copy(mine, copy)
    os.replace(copy, mine)  # now bound: the same bytes in another file are not mine
    assert "a ledger you have not trusted" in one_line(shape_of(mine))


def test_the_trust_store_is_written_one_record_a_line_and_reads_back_whole(tmp_path, my_store):
    """trust.json is written through json's C encoder, one record a line (indent= would use
    its Python encoder, a cost every new ledger paid); what it holds reads back unchanged."""
    from ledgerflow import trust_file

    for i in range(3):
        Ledger.open(tmp_path / f"own{i}.db").close()
    text = my_store.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert [Path(e["path"]).name for e in doc["own"]] == ["own0.db", "own1.db", "own2.db"]
    own_lines = [line for line in text.splitlines() if '"ledger_id"' in line]
    assert len(own_lines) == 3
    assert all('"path"' in line and '"file"' in line for line in own_lines)  # a record a line
    odd = {"own": [{"path": "a\nb", "file": [1, 2], "ledger_id": "\u00e9"}], "trusted": [],
           "version": 2}  # fmt: skip
    assert json.loads(trust_file._dumps(odd)) == odd
