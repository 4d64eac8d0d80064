"""Sharing and upkeep: export/import, trust, rm, gc, doctor, stats, S3."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

import ledgerflow
from ledgerflow import upkeep
from ledgerflow.client import Run, namespace, use_ledger
from ledgerflow.exceptions import LedgerflowError, UntrustedLedgerError
from ledgerflow.ledger import Ledger
from ledgerflow.sharing import export_runs, import_ledger

from .helpers import EXAMPLES, FLOWS, latest_run_id, query, run_flow

FLOW = FLOWS / "sharing" / "shared_flow.py"


@pytest.fixture(autouse=True)
def _global_namespace():
    namespace(None)
    yield
    use_ledger(None)


def two_runs(db):
    run_flow(FLOW, "--label", "a", db=db)
    run_flow(FLOW, "--label", "b", db=db)
    return [r[0] for r in query(db, "select run_id from runs order by created_at")]


def all_values(db, run_id):
    """{(step, task_id, name): sha} of a run, the final attempt of each task."""
    return {
        (r[0], r[1], r[2]): r[3]
        for r in query(
            db, "select step, task_id, name, sha from all_artifacts where run_id = ?", (run_id,)
        )
    }


def test_export_import_round_trip_preserves_runs_values_and_shas(db_path, tmp_path):
    first, second = two_runs(db_path)
    out = tmp_path / "shared.db"
    report = export_runs([f"SharedFlow/{first}"], out, ledger=db_path)
    assert report.copied == [f"SharedFlow/{first}"]
    assert query(out, "select run_id from runs") == [(first,)]
    # only the blobs that run references
    used = {r[0] for r in query(out, "select sha from artifact")}
    assert {r[0] for r in query(out, "select sha from blob")} == used
    target = tmp_path / "colleague.db"
    report = import_ledger(out, ledger=target)
    assert report.copied == [f"SharedFlow/{first}"]
    assert all_values(target, first) == all_values(db_path, first)
    run = Run(f"SharedFlow/{first}", ledger=target)
    assert run.successful and run["join"].task.data.results == [
        {"item": 3, "label": "a"},
        {"item": 1, "label": "a"},
        {"item": 2, "label": "a"},
    ]
    assert [t.index for t in sorted(run["work"].tasks(), key=lambda t: t.index)] == [0, 1, 2]
    assert query(target, "select doc from (select count(*) as doc from artifact_fts)")[0][0] > 0
    assert ledgerflow.search("label", ledger=target)


def test_importing_twice_changes_nothing(db_path, tmp_path):
    two_runs(db_path)
    target = tmp_path / "t.db"
    import_ledger(db_path, ledger=target)
    before = query(
        target,
        "select (select count(*) from run), (select count(*) from task), "
        "(select count(*) from artifact), (select count(*) from blob)",
    )
    report = import_ledger(db_path, ledger=target)
    assert report.copied == [] and len(report.already_present) == 2 and report.blobs_copied == 0
    after = query(
        target,
        "select (select count(*) from run), (select count(*) from task), "
        "(select count(*) from artifact), (select count(*) from blob)",
    )
    assert before == after


def test_blobs_already_present_are_not_copied_again(db_path, tmp_path):
    first, second = two_runs(db_path)
    target = tmp_path / "t.db"
    export_runs([f"SharedFlow/{first}"], target, ledger=db_path)
    report = import_ledger(db_path, ledger=target)
    assert report.copied == [f"SharedFlow/{second}"]
    big = query(db_path, "select sha from artifacts where name = 'big'")[0][0]
    assert query(target, "select count(*) from blob where sha = ?", (big,)) == [(1,)]
    assert report.bytes_copied < 2000  # the 400 KB `big` value was already there


def test_conflicting_run_id_is_reported_not_overwritten(db_path, tmp_path):
    first, _ = two_runs(db_path)
    target = tmp_path / "t.db"
    export_runs([f"SharedFlow/{first}"], target, ledger=db_path)
    conn = sqlite3.connect(target)  # someone changed the run's content in their copy
    conn.execute(
        "update artifact set sha = (select sha from artifact where name='items' limit 1)"
        " where name = 'label'"
    )
    conn.commit()
    conn.close()
    before = all_values(target, first)
    report = import_ledger(db_path, ledger=target)
    assert report.conflicts == [f"SharedFlow/{first}"]
    assert all_values(target, first) == before


def test_import_into_itself_is_refused(db_path, tmp_path):
    two_runs(db_path)
    with pytest.raises(LedgerflowError, match="into itself"):
        import_ledger(db_path, ledger=db_path)
    copy = tmp_path / "copy.db"
    Ledger.open(db_path).execute("pragma wal_checkpoint(truncate)")
    shutil.copy(db_path, copy)
    with pytest.raises(LedgerflowError, match="copy of this very ledger"):
        import_ledger(copy, ledger=db_path)


def test_pickles_from_another_machine_need_trust_json_loads_freely(db_path, tmp_path, monkeypatch):
    bomb = tmp_path / "exploded"
    monkeypatch.setenv("BOMB_PATH", str(bomb))
    # Someone else (their own trust store) makes the ledger: it is theirs, not ours.
    monkeypatch.setenv("LEDGERFLOW_TRUST_STORE", str(tmp_path / "someone-else.json"))
    run_flow(FLOW, "--with_bomb", "true", db=db_path)
    monkeypatch.delenv("LEDGERFLOW_TRUST_STORE")
    bomb.unlink(missing_ok=True)
    run = Run(f"SharedFlow/{latest_run_id(db_path, 'SharedFlow')}", ledger=db_path)
    # listing, previews, search and SQL never unpickle
    task = run["join"].task
    assert "bomb" in [a.id for a in task.artifacts] and task["bomb"].encoding == "pickle"
    assert ledgerflow.search("bomb", ledger=db_path)
    assert ledgerflow.sql("select preview from artifacts where name='bomb'", ledger=db_path).rows
    assert upkeep.doctor(Ledger.open(db_path)).healthy
    assert task.data.results[0]["label"] == "a"  # JSON: no trust needed
    with pytest.raises(UntrustedLedgerError, match="pickle runs code|loading a pickle runs code"):
        task.data.bomb
    with pytest.raises(UntrustedLedgerError):
        run["work"].task.data.shape
    assert not bomb.exists()
    monkeypatch.setenv("LEDGERFLOW_TRUST", "1")
    task.data.bomb
    assert bomb.exists()  # opted in: the pickle ran


def test_trust_call_opts_in_for_one_ledger(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_TRUST_STORE", str(tmp_path / "elsewhere.json"))
    run_flow(FLOW, db=db_path)
    monkeypatch.delenv("LEDGERFLOW_TRUST_STORE")
    shape = f"SharedFlow/{latest_run_id(db_path, 'SharedFlow')}"
    task = next(iter(Run(shape, ledger=db_path)["work"]))
    with pytest.raises(UntrustedLedgerError):
        task.data.shape
    import ledgerflow.trust_store as trust_module

    monkeypatch.setattr(trust_module, "_trusted_paths", set())
    ledgerflow.trust(db_path)
    assert isinstance(task.data.shape, tuple)


def test_rm_then_gc_frees_space_and_keeps_the_rest_loadable(db_path):
    first, second = two_runs(db_path)
    run_flow(FLOW, "--label", "c", db=db_path)
    ledger = Ledger.open(db_path)
    deleted = upkeep.rm(ledger, [f"SharedFlow/{second}"])
    assert deleted == [f"SharedFlow/{second}"]
    assert query(db_path, "select count(*) from runs where run_id = ?", (second,)) == [(0,)]
    assert query(
        db_path,
        "select count(*) from task t join run r on r.id=t.run_id where r.run_id = ?",
        (second,),
    ) == [(0,)]
    report = upkeep.gc(ledger)
    assert report.blobs_deleted > 0 and report.bytes_freed > 0
    assert upkeep.doctor(ledger).healthy
    run = Run(f"SharedFlow/{first}", ledger=db_path)
    assert run["join"].task.data.results[0]["label"] == "a"
    assert len(run["start"].task.data.big) == 400_000


def test_rm_keep_newest_and_older_than(db_path):
    for label in "abcd":
        run_flow(FLOW, "--label", label, db=db_path)
    ledger = Ledger.open(db_path)
    assert len(upkeep.rm(ledger, ["SharedFlow"], keep=2)) == 2
    assert query(db_path, "select count(*) from runs") == [(2,)]
    assert upkeep.rm(ledger, ["SharedFlow"], older_than="2000-01-01") == []
    assert len(upkeep.rm(ledger, ["SharedFlow"], older_than="2999-01-01")) == 2


def test_rm_of_a_running_run_is_refused(db_path):
    run_flow(FLOW, db=db_path)
    run_id = latest_run_id(db_path, "SharedFlow")
    conn = sqlite3.connect(db_path)
    conn.execute(
        "update run set status = 'running', pid = ?, host = ?",
        (os.getpid(), __import__("socket").gethostname()),
    )
    conn.commit()
    conn.close()
    with pytest.raises(LedgerflowError, match="still running"):
        upkeep.rm(Ledger.open(db_path), [f"SharedFlow/{run_id}"])
    with pytest.raises(LedgerflowError, match="in progress"):
        upkeep.gc(Ledger.open(db_path))


def test_doctor_detects_a_corrupted_blob_in_a_copy(db_path, tmp_path):
    run_flow(FLOW, db=db_path)
    Ledger.open(db_path).execute("pragma wal_checkpoint(truncate)")
    copy = tmp_path / "copy.db"
    shutil.copy(db_path, copy)
    conn = sqlite3.connect(copy)
    sha, data = conn.execute(
        "select sha, data from blob_chunk order by length(data) desc limit 1"
    ).fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    conn.execute("update blob_chunk set data = ? where sha = ?", (bytes(flipped), sha))
    conn.commit()
    conn.close()
    report = upkeep.doctor(Ledger(copy))
    assert not report.healthy
    assert any(sha[:12] in p and "damaged" in p for p in report.problems)
    assert upkeep.doctor(Ledger.open(db_path)).healthy


def test_doctor_marks_a_dangling_running_run_crashed_with_repair(db_path):
    run_flow(FLOW, db=db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "update run set status = 'running', pid = 999999999, host = ?",
        (__import__("socket").gethostname(),),
    )
    conn.execute("delete from artifact_fts where rowid = (select max(rowid) from artifact_fts)")
    conn.commit()
    conn.close()
    Ledger.forget(db_path)
    report = upkeep.doctor(Ledger(db_path, readonly=True))  # read-only: nothing fixed on open
    assert any("left running by a dead process" in p for p in report.problems)
    assert any(p.startswith("search index") for p in report.problems)
    ledger = Ledger.open(db_path)  # a writable open marks the dead run crashed at once
    assert query(db_path, "select status from runs") == [("crashed",)]
    fixed = upkeep.doctor(ledger, repair=True)
    assert fixed.repaired == ["rebuilt the search index (0 log pieces, 0 exceptions, "
                              "12 artifacts)"] and upkeep.doctor(ledger).healthy  # fmt: skip


def test_stats(db_path):
    two_runs(db_path)
    s = upkeep.stats(Ledger.open(db_path))
    assert s["runs"] == 2 and s["tasks"] == 12
    assert s["dedup_ratio"] > 1.5  # `big` is stored once for many tasks
    assert s["compression_ratio"] > 1
    assert s["flows"][0]["flow"] == "SharedFlow" and s["flows"][0]["runs"] == 2
    assert s["largest_artifacts"][0]["size"] >= 400_000


def test_the_spec_external_storage_example_runs_verbatim(db_path):
    proc = run_flow(EXAMPLES / "external_storage.py", db=db_path, top=())
    assert "Rows: 50000" in proc.stdout
    assert query(db_path, "select key, encoding from s3_object") == [("large_data", "json")]
    from ledgerflow import S3

    run = Run(
        f"ExternalStorageFlow/{latest_run_id(db_path, 'ExternalStorageFlow')}", ledger=db_path
    )
    with S3(run=run) as s3:
        obj = s3.get("large_data")
        assert len(obj.blob["rows"]) == 50000 and obj.size > 100_000
        assert [p.key for p in s3.list_paths()] == ["large_data"]
        s3.put("note.txt", "hello")
        s3.put("raw", b"\x00\x01")
        assert s3.get("note.txt").text == "hello" and s3.get("raw").blob == b"\x00\x01"
        assert open(s3.get("raw").path, "rb").read() == b"\x00\x01"
        assert [o.key for o in s3.get_many(["raw", "note.txt"])] == ["raw", "note.txt"]
        assert s3.get("missing", return_missing=True).exists is False
        with pytest.raises(KeyError, match="no s3 object 'nope'"):
            s3.get("nope")
