"""Ledgers someone sent you, crafted to attack: each test builds the hostile file the way an
attacker would (a real ledger made by someone else, then edited with plain sqlite3) and
checks, through the CLI and the Client API, that nothing runs, nothing is written, and every
refusal is one clear line. The "malicious code" is a pickle whose loading appends to a marker
file; every test asserts the marker never appears."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow import codec
from ledgerflow.client import Run, namespace
from ledgerflow.exceptions import CorruptBlobError, LedgerSchemaError, UntrustedLedgerError
from ledgerflow.ledger import Ledger
from ledgerflow.provenance import machine_id

from .helpers import FLOWS, latest_run_id, query, run_flow

FLOW = FLOWS / "sharing" / "shared_flow.py"


class Evil:
    """Unpickling runs `echo X >> marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo X >> {self.marker}",))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(Evil(marker), protocol=5)


def add_blob(db: Path, raw: bytes, encoding: str, *, sha: str | None = None,
             chunk_size: int = codec.DEFAULT_CHUNK_SIZE) -> str:  # fmt: skip
    """Store raw bytes as a blob with plain sqlite3, as an attacker would (any SHA)."""
    blob = codec.blob_from_raw(encoding, raw, chunk_size, sha=sha)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "insert or replace into blob(sha, codec, encoding, raw_size, stored_size, "
            "chunk_size, n_chunks, python_version, created_at, preview) values "
            "(?, 'zstd', ?, ?, ?, ?, ?, null, '2026-01-01T00:00:00.000000Z', '')",
            (blob.sha, encoding, blob.raw_size, blob.stored_size, chunk_size, blob.n_chunks),
        )
        conn.execute("delete from blob_chunk where sha = ?", (blob.sha,))
        conn.executemany("insert into blob_chunk(sha, seq, data) values (?, ?, ?)",
                         [(blob.sha, i, c) for i, c in enumerate(blob.chunks)])  # fmt: skip
    conn.close()
    return blob.sha


def sql(db: Path, statement: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(statement, params)
    conn.close()


def cli(*args: str, db: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def their_ledger(tmp_path_factory) -> Path:
    """A ledger made by someone else (their own trust store): one SharedFlow run."""
    folder = tmp_path_factory.mktemp("theirs")
    old = os.environ.get("LEDGERFLOW_TRUST_STORE")
    os.environ["LEDGERFLOW_TRUST_STORE"] = str(folder / "their-trust.json")
    try:
        run_flow(FLOW, db=folder / "made.db")
    finally:
        if old is None:
            del os.environ["LEDGERFLOW_TRUST_STORE"]
        else:
            os.environ["LEDGERFLOW_TRUST_STORE"] = old
    return folder / "made.db"


@pytest.fixture
def sent(their_ledger: Path, tmp_path: Path) -> Path:
    """A fresh copy of their ledger, as received by mail."""
    path = tmp_path / "sent.db"
    shutil.copy(their_ledger, path)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), "the evil pickle ran"


@pytest.fixture(autouse=True)
def _every_namespace():
    namespace(None)


def run_of(db: Path) -> str:
    return f"SharedFlow/{latest_run_id(db, 'SharedFlow')}"


# -- 1. the trust check reads the blob actually decoded ------------------------------------


def point_json_artifact_at(db: Path, sha: str) -> str:
    """Make the run's start/items artifact (labelled json) reference blob `sha`."""
    run_id = latest_run_id(db, "SharedFlow")
    sql(db, "update artifact set sha = ? where name = 'items' and task_id in (select t.id "
            "from task t join run r on r.id = t.run_id where r.run_id = ? and t.step = "
            "'start')", (sha, run_id))  # fmt: skip
    return f"SharedFlow/{run_id}/start/1/items"


def test_a_json_label_on_a_pickle_blob_does_not_unpickle(sent, marker):
    pathspec = point_json_artifact_at(sent, add_blob(sent, evil_pickle(marker), "pickle"))
    with pytest.raises(UntrustedLedgerError):
        Run(pathspec.rsplit("/", 3)[0], ledger=sent)["start"].task["items"].data
    assert "pickle" in one_line(cli("show", pathspec, "--load", db=sent))
    flow_dump = subprocess.run(
        [sys.executable, str(FLOW), "--db", str(sent), "dump", "/".join(pathspec.split("/")[1:4])],
        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert flow_dump.returncode == 1 and "pickle" in flow_dump.stderr
    doctor = cli("doctor", db=sent)
    assert doctor.returncode == 1 and "labelled 'json' but its blob is 'pickle'" in doctor.stdout


# -- 2. every byte is verified before it is decoded --------------------------------------


def test_a_multi_chunk_pickle_is_verified_before_it_is_unpickled(tmp_path, marker):
    db = tmp_path / "mine.db"
    ledger = Ledger(db)  # created here: this user's own ledger, its pickles trusted
    payload = evil_pickle(marker) + b"\x00" * 200  # STOP comes first: the rest is ignored
    sha = add_blob(db, payload, "pickle", sha=codec.sha256(b"something else"), chunk_size=64)
    assert query(db, "select n_chunks > 1 from blob where sha = ?", (sha,)) == [(1,)]
    with pytest.raises(CorruptBlobError, match="does not match its SHA-256"):
        ledger.load(sha)
    ledger.close()


def test_import_rehashes_every_blob_and_refuses_the_whole_file(sent, tmp_path, marker):
    one = codec.sha256(b"1")  # the JSON encoding of the integer 1
    point_json_artifact_at(sent, add_blob(sent, evil_pickle(marker), "json", sha=one))
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    error = one_line(cli("import", str(sent), db=mine))
    assert "nothing was written" in error and one[:12] in error
    assert query(mine, "select count(*) from run") == [(0,)]
    assert query(mine, "select count(*) from blob") == [(0,)]


# -- 3. machine_id grants nothing ----------------------------------------------------------


def test_a_run_stamped_with_my_machine_id_is_still_untrusted(sent, tmp_path, marker):
    sha = add_blob(sent, evil_pickle(marker), "pickle")
    sql(sent, "update artifact set sha = ?, encoding = 'pickle' where name = 'items'", (sha,))
    sql(sent, "update run set machine_id = ?", (machine_id(),))
    with pytest.raises(UntrustedLedgerError):
        Run(run_of(sent), ledger=sent)["start"].task["items"].data
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    assert cli("import", str(sent), db=mine).returncode == 0
    # Inside my own ledger, the imported run stays untrusted.
    with pytest.raises(UntrustedLedgerError):
        Run(run_of(mine), ledger=mine)["start"].task["items"].data
    assert query(mine, "select trusted from imported_run") == [(0,)]


def test_trust_is_granted_by_the_user_only(sent, tmp_path):
    task = Run(run_of(sent), ledger=sent)["work"].task
    with pytest.raises(UntrustedLedgerError):
        task.data.shape
    assert cli("trust", str(sent), db=sent).returncode == 0  # remembered in the store
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from ledgerflow import Run, namespace; "
         "namespace(None); print(Run(sys.argv[1], ledger=sys.argv[2])['work'].task.data.shape)",
         run_of(sent), str(sent)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    moved = tmp_path / "moved.db"
    shutil.copy(sent, moved)  # the same ledger id at another path is not what was trusted
    with pytest.raises(UntrustedLedgerError):
        Run(run_of(moved), ledger=moved)["work"].task.data.shape


def test_my_own_runs_load_without_trust(tmp_path):
    db = tmp_path / "mine.db"
    run_flow(FLOW, db=db)
    assert Run(run_of(db), ledger=db)["work"].task.data.shape[1] == 2


# -- 4. resume from an untrusted run --------------------------------------------------------


def test_resume_from_an_imported_run_needs_trust(sent, tmp_path, marker):
    sha = add_blob(sent, evil_pickle(marker), "pickle")
    sql(
        sent,
        "update artifact set sha = ?, encoding = 'pickle' where name = '_foreach_values'",
        (sha,),
    )
    mine = tmp_path / "mine.db"
    run_flow(FLOW, db=mine)
    assert cli("import", str(sent), db=mine).returncode == 0
    origin = latest_run_id(sent, "SharedFlow")
    proc = run_flow(FLOW, "--origin-run-id", origin, db=mine, command="resume", check=1)
    assert "trust" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # It names the source to trust, never the user's own ledger (issue 30, item 3).
    assert "trust --source" in proc.stderr and f"ledgerflow trust {mine}" not in proc.stderr


# -- 5, 6. readers never write; a foreign file stays untouched ------------------------------


def file_state(db: Path) -> list:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [list(conn.execute(f"select * from {t}")) for t in ("run", "blob_chunk")]
    finally:
        conn.close()


def test_reading_commands_never_write_nor_fire_a_planted_trigger(sent):
    sql(
        sent, "update run set status = 'running', host = ?, pid = 999999999", (os.uname().nodename,)
    )
    sql(sent, "create trigger wipe after update on run begin delete from blob_chunk; end")
    before = file_state(sent)
    spec = run_of(sent)
    runs = cli("runs", "--json", db=sent)
    assert runs.returncode == 0 and '"status": "crashed"' in runs.stdout  # shown, not written
    for args in (["show", spec], ["search", "label"], ["diff", spec.split("/")[1],
                 spec.split("/")[1]], ["stats"], ["sql", "select count(*) from runs"],
                 ["export", spec, "--to", str(sent.parent / "out.db")]):  # fmt: skip
        proc = cli(*args, db=sent)
        assert proc.returncode == 0, (args, proc.stderr)
    assert file_state(sent) == before
    doctor = cli("doctor", db=sent)
    assert doctor.returncode == 1 and "trigger wipe" in doctor.stdout
    assert file_state(sent) == before
    with pytest.raises(LedgerSchemaError, match="trigger wipe"):
        Ledger(sent)
    assert file_state(sent) == before


def test_another_applications_file_is_identified_before_anything_changes(tmp_path):
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("create table users (name text)")
    conn.commit()
    conn.close()
    for args in (["runs"], ["search", "x"], ["sql", "select 1"], ["doctor"], ["gc"]):
        assert "not a ledgerflow ledger" in one_line(cli(*args, db=other)), args
    assert query(other, "pragma journal_mode") == [("delete",)]
    sql(other, "pragma user_version = 1")
    for args in (["runs"], ["search", "x"], ["sql", "select 1"], ["show", "F"]):
        assert "not a ledgerflow ledger" in one_line(cli(*args, db=other)), args
    with pytest.raises(LedgerSchemaError, match="not a ledgerflow ledger"):
        Ledger(other)
    assert query(other, "pragma journal_mode") == [("delete",)]


# -- 14, 16. bombs and damaged blobs ----------------------------------------------------------


def zero_frame(size: int) -> bytes:
    """One zstd frame declaring `size` bytes of zeros (tiny: zeros compress to nothing)."""
    import zstandard

    out = zstandard.ZstdCompressor(write_content_size=True).compressobj(size=size)
    piece = b"\x00" * (1 << 20)
    frame = b"".join(out.compress(piece) for _ in range(size >> 20))
    return frame + out.flush()


def test_a_frame_claiming_a_gigabyte_is_refused_before_it_is_allocated(sent):
    frame = zero_frame(1 << 30)
    assert len(frame) < 64 * 1024
    sha = "ab" * 32
    sql(sent, "insert into blob(sha, codec, encoding, raw_size, stored_size, chunk_size, "
              "n_chunks, created_at, preview) values (?, 'zstd', 'json', ?, ?, ?, 1, '', '')",
        (sha, 1 << 30, len(frame), 1 << 30))  # fmt: skip
    sql(sent, "insert into blob_chunk(sha, seq, data) values (?, 0, ?)", (sha, frame))
    pathspec = point_json_artifact_at(sent, sha)
    # The peak the load itself adds (the high-water mark after it, less the one before it
    # with everything imported and the artifact found): what a bomb would drive up.
    probe = ("import resource, sys\nfrom ledgerflow import DataArtifact, namespace\n"
             "from ledgerflow.exceptions import CorruptBlobError\nnamespace(None)\n"
             "artifact = DataArtifact(sys.argv[1], ledger=sys.argv[2])\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "try:\n    artifact.data\n"
             "except CorruptBlobError as e:\n    print('refused:', e)\n"
             "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", probe, pathspec, str(sent)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and int(proc.stdout.split()[-1]) < 300 * 2**20
    doctor = cli("doctor", db=sent)
    assert doctor.returncode == 1 and "blob ababababab" in doctor.stdout


@pytest.mark.parametrize("damage", [
    "update blob set raw_size = -5 where sha = :sha",
    "update blob set raw_size = 10 * 1024 * 1024 * 1024 where sha = :sha",
    "update blob set raw_size = 'many' where sha = :sha",
    "update blob set n_chunks = 3 where sha = :sha",
    "delete from blob_chunk where sha = :sha",
    "update blob_chunk set data = x'28b52ffd00deadbeef' where sha = :sha",
    "update blob_chunk set data = 'just text' where sha = :sha",
])  # fmt: skip
def test_import_refuses_a_damaged_blob_with_one_line_and_writes_nothing(sent, tmp_path, damage):
    (sha,) = query(sent, "select sha from artifact where name = 'big' limit 1")[0]
    sql(sent, damage, {"sha": sha})
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    error = one_line(cli("import", str(sent), db=mine))
    assert "nothing was written" in error and sha[:12] in error
    assert query(mine, "select count(*) from run") == [(0,)]
    assert query(mine, "select count(*) from blob") == [(0,)]
    exported = tmp_path / "exported.db"
    assert "nothing was written" in one_line(cli("export", run_of(sent), "--to", str(exported),
                                                 db=sent))  # fmt: skip


# -- 15. an imported run is never live --------------------------------------------------------


def test_an_imported_running_run_with_a_future_heartbeat_blocks_neither_gc_nor_rm(sent, tmp_path):
    sql(sent, "update run set status = 'running', host = ?, pid = ?, heartbeat_at = "
              "'2999-01-01T00:00:00.000000Z'", (os.uname().nodename, os.getpid()))  # fmt: skip
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    assert cli("import", str(sent), db=mine).returncode == 0
    assert cli("gc", db=mine).returncode == 0
    assert cli("rm", run_of(mine), "--yes", db=mine).returncode == 0
    assert query(mine, "select count(*) from run") == [(0,)]


def test_a_heartbeat_from_the_future_is_no_sign_of_life():
    from ledgerflow.liveness import run_is_dead

    assert run_is_dead("elsewhere", 1, "2999-01-01T00:00:00.000000Z")


# -- 10. a lone surrogate is stored, not a crash ------------------------------------------------


def test_strings_with_lone_surrogates_are_stored_exactly(db_path):
    run_flow(FLOWS / "hostile" / "surrogate_flow.py", db=db_path)
    run = Run(f"SurrogateFlow/{latest_run_id(db_path, 'SurrogateFlow')}", ledger=db_path)
    assert run.successful
    assert run.data.file_name == "report-\udcff.csv" and run.data.names == ["ok", "\ud800abc"]
    previews = query(db_path, "select preview from artifacts where name = 'file_name'")
    assert previews == [("report-\\udcff.csv",)]


# -- 13. bounded work: time limits and Ctrl-C ---------------------------------------------------

FOREVER = "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r"


def test_sql_stops_a_query_past_its_time_limit(sent):
    assert "ran longer than 0.5s" in one_line(cli("sql", FOREVER, "--timeout", "0.5", db=sent))
    sql(sent, "drop view runs")
    sql(sent, f"create view runs as {FOREVER}")  # a hostile view
    assert "ran longer than 0.5s" in one_line(cli("sql", "select * from runs", "--timeout",
                                                  "0.5", db=sent))  # fmt: skip
    stats = cli("stats", "--json", db=sent)  # reads the tables, never a view
    assert stats.returncode == 0, stats.stderr
    from ledgerflow.query import QueryTimeout
    from ledgerflow.query import sql as run_sql

    with pytest.raises(QueryTimeout):
        run_sql(FOREVER, ledger=sent, timeout=0.2)


def test_search_stops_past_its_time_limit(sent):
    # A received ledger may hold a search index built to be slow: searching it is bounded
    # like sql (the index here is merely big; the limit tiny).
    sql(sent, "insert into artifact_fts(rowid, name, flow, step, preview) "
              "with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000) "
              "select 1000000 + i, 'label', 'F', 's', 'label filler' from n")  # fmt: skip
    from ledgerflow.fulltext import search
    from ledgerflow.query import QueryTimeout

    with pytest.raises(QueryTimeout):
        search("label", ledger=sent, timeout=1e-9)
    out = cli("search", "label", "--timeout", "0.000000001", db=sent)
    assert out.returncode == 1 and "ran longer than" in one_line(out)
    assert search("label", ledger=sent, limit=3) == []  # the default limit lets it finish
    # (no hit: rows of a search index that point at no artifact are never shown)


def test_ctrl_c_stops_a_running_query_at_once(sent):
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgerflow", "--db", str(sent), "sql", FOREVER, "--timeout", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(1.5)  # let it start the query
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)  # a hang guard, not a timing assertion
    # The one error handler of both command lines: Ctrl-C is exit 130, one line.
    assert proc.returncode == 130 and err.strip() == "Interrupted.", err


# -- one clear line instead of internal errors --------------------------------------------------


def test_four_concurrent_imports_of_one_file_copy_it_once(sent, tmp_path):
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    procs = [subprocess.Popen([sys.executable, "-m", "ledgerflow", "--db", str(mine), "import",
                               str(sent)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert query(mine, "select count(*) from run") == [(1,)]
    assert query(mine, "select count(*) from artifact") == query(
        sent, "select count(*) from artifact"
    )


def test_malformed_json_columns_give_one_line(sent):
    spec = run_of(sent)
    sql(sent, "update task set foreach_stack = '[[1,2' where step = 'work'")
    sql(sent, "update run set graph_info = '{not json'")
    for args in (["show", spec], ["diff", spec, spec]):
        assert "not valid JSON" in one_line(cli(*args, db=sent)), args
    with pytest.raises(Exception, match="not valid JSON") as caught:
        Run(spec, ledger=sent)["work"].task.foreach_stack()
    assert "LedgerError" in type(caught.value).__name__
    doctor = cli("doctor", db=sent)
    assert "malformed JSON in graph_info" in doctor.stdout
    assert "malformed JSON in foreach_stack" in doctor.stdout


def test_limits_beyond_sqlite_integers_are_a_usage_error(sent):
    proc = cli("runs", "--limit", "99999999999999999999999", db=sent)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--limit" in proc.stderr


def test_a_newer_schema_is_refused_by_search_and_sql_too(sent):
    sql(sent, "pragma user_version = 99")
    for args in (["search", "label"], ["sql", "select 1"], ["runs"]):
        assert "schema 99, newer than this ledgerflow" in one_line(cli(*args, db=sent)), args


def test_a_json_blob_that_is_not_json_is_a_corrupt_blob_error(sent):
    sha = add_blob(sent, b"\xff\xfe not json", "json")
    pathspec = point_json_artifact_at(sent, sha)
    from ledgerflow.client import DataArtifact

    with pytest.raises(CorruptBlobError, match="labelled json but is not"):
        DataArtifact(pathspec, ledger=sent).data


def test_a_disk_error_is_not_called_a_foreign_file():
    from ledgerflow.identify import unreadable as _unreadable

    error = _unreadable(Path("/x/ledgerflow.db"), sqlite3.OperationalError("disk I/O error"))
    assert "not a ledgerflow ledger" not in str(error) and "check the disk" in str(error)


def test_terminal_control_sequences_are_escaped_on_screen(sent):
    evil = "name\x1b]0;pwned\x07\rfake"
    sql(sent, "update blob set preview = ? where sha in (select sha from artifact where "
              "name = 'items')", (evil,))  # fmt: skip
    spec = run_of(sent)
    for args in (["show", f"{spec}/start/1"], ["show", f"{spec}/start/1/items"]):
        proc = cli(*args, db=sent)
        assert proc.returncode == 0 and "\x1b" not in proc.stdout and "\r" not in proc.stdout
        assert "\\x1b]0;pwned\\x07\\x0dfake" in proc.stdout


# -- 9. resume of a run killed before start finished ---------------------------------------------


def test_resume_of_a_run_killed_during_start_uses_its_parameters(db_path):
    import signal
    import time

    flow = FLOWS / "hostile" / "slow_start.py"
    proc = subprocess.Popen([sys.executable, str(flow), "--db", str(db_path), "--quiet", "run",
                             "--alpha", "21"], env={**os.environ, "SLOW_START": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60  # a hang guard
    while time.monotonic() < deadline:
        if db_path.exists() and query(db_path, "select count(*) from sqlite_master where "
                                               "name = 'run'") == [(1,)]:  # fmt: skip
            if query(db_path, "select count(*) from run") == [(1,)]:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    origin = latest_run_id(db_path, "SlowStartFlow")
    # start never finished (its row, written when it started, is all there is)
    assert query(db_path, "select count(*) from task where status != 'running'") == [(0,)]
    run_flow(flow, "--origin-run-id", origin, db=db_path, command="resume")
    namespace(None)
    resumed = Run(f"SlowStartFlow/{latest_run_id(db_path, 'SlowStartFlow')}", ledger=db_path)
    assert resumed.successful and resumed.data.doubled == 42
