"""Task logs at scale (issue 26, issue 30 item 13): compressed pieces read back exactly,
paged, searched with bounded snippets, kept and indexed through a kill -9, old ledgers read
and migrated, `stats` and `doctor` on logs."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import ledgerflow
from ledgerflow import logstore
from ledgerflow.cli.main import cli
from ledgerflow.exceptions import QueryTimeout
from ledgerflow.ledger import Ledger
from ledgerflow.search_index import TASK_FTS_DDL, TEXT_KINDS, index_exceptions

from .helpers import query, run_flow

ROUND_TRIP_FLOW = """
import os, sys
from ledgerflow import FlowSpec, step


class RoundTripFlow(FlowSpec):
    @step
    def start(self):
        for i in range(8000):  # both streams interleaved, several pieces of each
            sys.stdout.write(f"out {i} héllo ☃ 𝄞\\r\\n" if i % 7 else f"partial {i} ")
            sys.stderr.write(f"err {i} ünïcode\\r" + ("\\n" if i % 5 else ""))
        sys.stdout.write("no newline at the end ∑")
        sys.stdout.flush()
        sys.stderr.write("last ⏎")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RoundTripFlow()
"""


def _expected() -> tuple[str, str]:
    out = "".join(f"out {i} héllo ☃ 𝄞\r\n" if i % 7 else f"partial {i} " for i in range(8000))
    err = "".join(f"err {i} ünïcode\r" + ("\n" if i % 5 else "") for i in range(8000))
    return out + "no newline at the end ∑", err + "last ⏎"


def invoke(db: Path, *args: str, code: int = 0):
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("logs")
    flow = folder / "round_trip.py"
    flow.write_text(ROUND_TRIP_FLOW)
    db = folder / "ledgerflow.db"
    run_flow(flow, db=db)
    (run_id,) = query(db, "select run_id from runs")[0]
    return db, f"RoundTripFlow/{run_id}/start/1"


def test_logs_round_trip_exactly_through_compressed_pieces(trip):
    db, pathspec = trip
    out, err = _expected()
    ledgerflow.namespace(None)
    task = ledgerflow.Task(pathspec, ledger=db)
    # As Metaflow's Task.stdout: every line ends with a newline, an unfinished last one too
    # (the stored bytes are exact: the sizes, the pages, SQL's log_text and `logs --raw`).
    assert task.stdout == out + "\n" and task.stderr == err + "\n"
    assert task.stdout_size == len(out.encode()) and task.stderr_size == len(err.encode())
    # Lines end at "\n" only, as Metaflow's: a carriage return stays inside its line.
    lines = [line for _, line in task.loglines("stderr")]
    assert lines == err.split("\n") and any("\r" in line for line in lines)
    assert query(db, "select log_text(l.task_id, 'stdout') from log l join task k "
                     "on k.id = l.task_id where k.step = 'start' and l.stream = 'stdout'")[0][0] == out  # fmt: skip
    # stored in several compressed pieces, no text left in the log table
    pieces = query(
        db,
        "select stream, codec, bytes, length(data) from log_piece p "
        "join task k on k.id = p.task_id where k.step = 'start'",
    )
    assert sorted(p[0] for p in pieces).count("stdout") > 1 and len(pieces) > 3
    assert all(codec == "zstd" and stored < size for _, codec, size, stored in pieces)
    assert query(db, "select count(*) from log where text != ''") == [(0,)]
    cli_out = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "--db", str(db), "logs", pathspec, "--stdout",
         "--raw"], capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert cli_out.decode() == out + "\n"  # `logs` ends an unfinished last line, as before
    # Without --raw a carriage return starts a new line on the terminal (issue 30, item 10).
    screened = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "--db", str(db), "logs", pathspec, "--stdout"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert screened.decode() == out.replace("\r\n", "\n") + "\n"


def test_a_log_is_paged_from_a_byte_or_a_line_and_its_tail(trip):
    db, pathspec = trip
    out, _ = _expected()
    data = out.encode()
    ledger = Ledger.open(db, readonly=True)
    (pk,) = query(db, "select id from task where step = 'start'")[0]
    assert logstore.total_bytes(ledger.conn, pk, "stdout") == len(data)
    pages, at = [], 0
    while True:  # pages of odd sizes cut anywhere, even inside a character
        page = logstore.log_page(ledger.conn, pk, "stdout", at, max_bytes=997)
        assert page.start == at and page.total_bytes == len(data)
        pages.append(page.text)
        if page.end == page.total_bytes:
            break
        at = page.end
    assert "".join(pages) == out
    line = logstore.log_page(ledger.conn, pk, "stdout", line=2500, max_bytes=200)
    lines = out.split("\n")
    assert line.first_line == 2500 and line.text.startswith(lines[2500][:20])
    assert line.total_lines == out.count("\n")
    tail = logstore.log_page(ledger.conn, pk, "stdout", tail=True, max_bytes=300)
    assert tail.end == len(data) and out.endswith(tail.text) and 0 < len(tail.text) <= 300
    assert tail.first_line == out.count("\n", 0, len(out) - len(tail.text))
    middle = logstore.log_page(ledger.conn, pk, "stdout", 3, max_bytes=4)
    assert middle.text == data[3:7].decode()
    assert logstore.log_page(ledger.conn, pk, "stdout", len(data)).text == ""


def _copy(db: Path, to: Path) -> Path:
    src = sqlite3.connect(db)
    src.execute(f"vacuum into '{to}'")
    src.close()
    return to


def test_pieces_are_cut_at_line_ends_and_small_ones_are_merged(trip, tmp_path):
    db = _copy(trip[0], tmp_path / "pieces.db")
    ledger = Ledger.open(db)
    (pk,) = query(db, "select id from task where step = 'end'")[0]
    assert logstore.read_text(ledger.conn, pk, "stdout") == ""
    rng = random.Random(5)
    text = []
    for _ in range(600):  # flushes of every size, as a live task's output arrives
        chunk = "".join(rng.choice(["word ", "ĳ", "\n", "x" * rng.randint(0, 400), "\r"])
                        for _ in range(rng.randint(0, 30)))  # fmt: skip
        text.append(chunk)
        with ledger.write() as conn:
            logstore.append_logs(conn, [(pk, "stdout", chunk)])
        if rng.random() < 0.005:  # one very long line: cut at PIECE_MAX
            chunk = "é" * (logstore.PIECE_MAX // 2 + 3)
            text.append(chunk)
            with ledger.write() as conn:
                logstore.append_logs(conn, [(pk, "stdout", chunk)])
    assert logstore.read_text(ledger.conn, pk, "stdout") == "".join(text)
    rows = ledger.execute("select bytes, byte_start, line_start, newlines from log_piece "
                          "where task_id = ? order by byte_start", (pk,)).fetchall()  # fmt: skip
    assert all(size <= logstore.PIECE_MAX for size, *_ in rows)
    total = len("".join(text).encode())
    assert len(rows) <= 3 * total // logstore.PIECE_TARGET + 2  # small flushes were merged
    assert 600 > 5 * (3 * total // logstore.PIECE_TARGET + 2)
    for (size, start, line, newlines), nxt in zip(rows, rows[1:]):
        assert nxt[1] == start + size and nxt[2] == line + newlines
    assert logstore.index_problems(ledger.conn) == []
    ledger.close()


def _slow_snippet_ledger(tmp_path: Path, trip_db: Path) -> Path:
    """A ledger as received from someone: schema 7 (logs in log.text, indexed in task_fts
    with a second copy), one log row of 2 MB with the search word all through it."""
    db = tmp_path / "received.db"
    src = sqlite3.connect(trip_db)
    src.execute(f"vacuum into '{db}'")
    src.close()
    as_schema_7(db)
    conn = sqlite3.connect(db)
    (pk,) = conn.execute("select id from task where step = 'end'").fetchone()
    huge = "word " * 400_000
    conn.execute("update log set text = ? where task_id = ? and stream = 'stdout'", (huge, pk))
    conn.execute("insert into task_fts(rowid, text) values (?, ?)", (pk * 4, huge))
    conn.commit()
    conn.close()
    return db


def test_a_huge_log_row_gets_a_snippet_within_the_timeout(trip, tmp_path):
    # FTS5's snippet() over one huge row ran for minutes, and the progress handler could not
    # stop it (issue 30 item 13): a snippet is now cut from at most SNIPPET_SOURCE characters.
    db = _slow_snippet_ledger(tmp_path, trip[0])
    hits = ledgerflow.search("word", kind="log", ledger=db, timeout=2)
    assert [(h.step, h.name) for h in hits] == [("end", "stdout")]
    assert "[word]" in hits[0].snippet and len(hits[0].snippet) < 200
    result = invoke(db, "search", "word", "--timeout", "2")
    assert "RoundTripFlow/" in result.stdout and "[word]" in result.stdout


def test_the_timeout_stops_a_search_and_sql_however_big_the_text(trip, tmp_path):
    db = _slow_snippet_ledger(tmp_path, trip[0])
    # A query that reads the huge row many times over: stopped by the progress handler.
    with pytest.raises(QueryTimeout):
        ledgerflow.sql("with recursive n(i) as (select 1 union all select i + 1 from n "
                       "where i < 100000) select count(*) from n, log "
                       "where instr(log.text, 'nothing')", ledger=db, timeout=0.5)  # fmt: skip
    result = invoke(db, "sql", "with recursive n(i) as (select 1 union all select i + 1 "
                    "from n) select count(*) from n", "--timeout", "0.5", code=1)  # fmt: skip
    assert "longer than 0.5s" in result.stderr


def as_schema_7(db: Path) -> None:
    """Turn a ledger back into what schema 7 wrote: logs as text in `log`, indexed with
    exceptions in task_fts, no log_piece/log_fts."""
    conn = sqlite3.connect(db)
    texts = {(pk, s): logstore.read_text(conn, pk, s) or ""
             for pk, s in conn.execute("select task_id, stream from log").fetchall()}  # fmt: skip
    for (pk, stream), text in texts.items():
        conn.execute("update log set text = ? where task_id = ? and stream = ?", (text, pk, stream))
    conn.execute("drop table log_fts")
    conn.execute("drop table log_piece")
    conn.execute("drop table task_fts")
    conn.execute(TASK_FTS_DDL)
    conn.executemany("insert into task_fts(rowid, text) values (?, ?)",
                     [(pk * 4 + TEXT_KINDS[s], t) for (pk, s), t in texts.items() if t])  # fmt: skip
    index_exceptions(conn)
    conn.execute("pragma user_version = 7")
    conn.commit()
    conn.close()


def test_an_old_ledger_is_searched_as_it_is_and_migrated_by_a_writer(trip, tmp_path):
    db = tmp_path / "old.db"
    src = sqlite3.connect(trip[0])
    src.execute(f"vacuum into '{db}'")
    src.close()
    as_schema_7(db)
    out, err = _expected()
    before = db.read_bytes()
    ledgerflow.namespace(None)
    # search reads it as it is (the Client API asks for one opening with write access)
    assert [h.name for h in ledgerflow.search("ünïcode", ledger=db)] == ["stderr"]
    assert db.read_bytes() == before  # readers never write
    Ledger.open(db).close()  # a writer migrates: the text moves into pieces
    assert query(db, "pragma user_version")[0][0] >= 8
    assert query(db, "select count(*) from log where text != ''") == [(0,)]
    assert query(db, "select count(*) from task_fts where rowid % 4 != 2") == [(0,)]
    task = ledgerflow.Task(trip[1], ledger=db)
    assert task.stdout == out + "\n" and task.stderr == err + "\n"  # (Task.stdout's form)
    assert [h.name for h in ledgerflow.search("ünïcode", ledger=db)] == ["stderr"]
    invoke(db, "doctor")


def test_a_kill_9_keeps_flushed_output_indexed_and_doctor_healthy(tmp_path):
    from .test_isolation import _start_holder, _wait_for_output

    db = tmp_path / "crash.db"
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = _start_holder(db, pids)
    _wait_for_output(db, "holding 1")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    Ledger.forget(db)
    (run_id,) = query(db, "select run_id from runs")[0]
    # the flushed output is indexed already: doctor's only problem is the dead run
    result = invoke(db, "doctor", code=1)
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    assert problems == [f"problem: run HolderFlow/{run_id} was left running by a dead process"]
    result = invoke(db, "doctor", "--repair")  # says what it changed
    assert f"repaired: marked HolderFlow/{run_id} as crashed" in result.stdout
    Ledger.forget(db)
    Ledger.open(db).close()
    assert query(db, "select status from runs") == [("crashed",)]
    hits = ledgerflow.search("holding", kind="log", ledger=db)
    assert sorted((h.step, h.snippet) for h in hits) == [
        ("hold", "[holding] 0"),
        ("hold", "[holding] 1"),
    ]
    result = invoke(db, "doctor")
    assert "healthy" in result.stdout


def test_doctor_notices_a_damaged_log_index_and_says_what_it_repaired(trip, tmp_path):
    db = tmp_path / "copy.db"
    src = sqlite3.connect(trip[0])
    src.execute(f"vacuum into '{db}'")
    src.close()
    conn = sqlite3.connect(db)
    conn.execute("insert into log_fts(log_fts) values ('delete-all')")
    conn.commit()
    conn.close()
    (pieces,) = query(db, "select count(*) from log_piece")[0]
    result = invoke(db, "doctor", code=1)
    assert f"search index has 0 entries for {pieces} log pieces" in result.stdout
    result = invoke(db, "doctor", "--repair")
    assert f"repaired: rebuilt the search index ({pieces} log pieces" in result.stdout
    assert [h.name for h in ledgerflow.search("ünïcode", ledger=db)] == ["stderr"]
    invoke(db, "doctor")


def test_stats_reports_logs_and_artifacts_apart(trip):
    db, _ = trip
    figures = json.loads(invoke(db, "stats", "--json").stdout)
    out, err = _expected()
    logs = figures["logs"]
    assert logs["logical_bytes"] == len(out.encode()) + len(err.encode())
    assert 0 < logs["stored_bytes"] < logs["logical_bytes"]
    arts = figures["artifact_bytes"]
    assert arts["logical_bytes"] >= arts["unique_bytes"] > 0
    assert figures["dedup_ratio"] == round(arts["logical_bytes"] / arts["unique_bytes"], 2)
    text = invoke(db, "stats").stdout
    assert "logs: " in text and "compressed" in text


def test_rm_forgets_a_runs_log_pieces_in_the_index(trip, tmp_path):
    db = tmp_path / "rm.db"
    src = sqlite3.connect(trip[0])
    src.execute(f"vacuum into '{db}'")
    src.close()
    run = trip[1].rsplit("/", 2)[0]
    invoke(db, "rm", run)
    assert query(db, "select count(*) from log_piece") == [(0,)]
    assert query(db, "select count(*) from log_fts") == [(0,)]
    assert ledgerflow.search("ünïcode", ledger=db) == []
    invoke(db, "doctor")


@pytest.mark.slow
def test_a_task_printing_600000_lines(tmp_path):
    db = tmp_path / "big.db"
    flow = tmp_path / "biglog.py"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from bench_logs import FLOW

    flow.write_text(FLOW)
    run_flow(flow, db=db, top=("--quiet",))
    printed = sum(len(f"epoch {i // 20000} step {i} loss {1.0 / (i + 1):.6f} word\n")
                  for i in range(600_000))  # fmt: skip
    assert os.path.getsize(db) + (os.path.getsize(f"{db}-wal") if os.path.exists(f"{db}-wal")
                                  else 0) <= 0.6 * printed + 2_000_000  # fmt: skip
    (run_id,) = query(db, "select run_id from runs")[0]
    out = subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db), "logs",
                          f"BigLogFlow/{run_id}/start", "--stdout"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.count("\n") == 600_000 and out.endswith("step 599999 loss 0.000002 word\n")
    hits = ledgerflow.search("word", ledger=db, timeout=5)
    assert [h.step for h in hits] == ["start"]


def test_reading_and_writing_a_log_reads_indexes_only(trip, tmp_path):
    db = _copy(trip[0], tmp_path / "plans.db")
    conn = sqlite3.connect(db)
    (pk,) = conn.execute("select id from task where step = 'start'").fetchone()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    logstore.read_both(conn, pk)
    logstore.total_bytes(conn, pk, "stdout")
    logstore.log_page(conn, pk, "stdout", 5000, max_bytes=100)
    logstore.log_page(conn, pk, "stdout", line=3000)
    logstore.log_page(conn, pk, "stderr", tail=True)
    logstore.append_logs(conn, [(pk, "stdout", "more\n")])
    conn.set_trace_callback(None)
    scans = [
        (sql, detail)
        for sql in set(statements)  # ours, not FTS5's own ('main'.'log_fts_...')
        if sql.lstrip().lower().startswith(("select", "update")) and "'main'." not in sql
        for *_, detail in conn.execute(f"explain query plan {sql}")
        if detail.startswith("SCAN") and "sqlite_master" not in detail
    ]
    assert scans == [] and len(set(statements)) > 8
    conn.rollback()
    conn.close()


def test_a_damaged_log_piece_is_one_line_and_doctor_names_it(trip, tmp_path):
    db = _copy(trip[0], tmp_path / "damaged.db")
    conn = sqlite3.connect(db)
    conn.execute("update log_piece set data = zeroblob(40) where id = (select min(p.id) from "
                 "log_piece p join task t on t.id = p.task_id where t.step = 'start' "
                 "and p.stream = 'stdout')")  # fmt: skip
    conn.commit()
    conn.close()
    result = invoke(db, "doctor", code=1)
    assert f"log piece(s) are damaged (their text is not what they claim): {trip[1]} stdout" in (
        result.stdout
    )
    proc = subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db), "logs", trip[1]],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "a log piece does not decompress" in proc.stderr and "ledgerflow doctor" in proc.stderr
    assert [h.name for h in ledgerflow.search("ünïcode", ledger=db)] == ["stderr"]  # the rest
