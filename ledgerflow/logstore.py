"""Task logs as stored: zstd-compressed pieces, written as the output streams in, read back
exactly. Owned by the "logs" area (with tasklog.py, search_index.py, fulltext.py).

A stream's text (what a task attempt printed to stdout or stderr) is, in order:
1. `log.text` of its `log` row: the whole text in ledgers written before migration 8, and
   in files received from them (read-only readers never migrate); '' since;
2. then its `log_piece` rows in `byte_start` order, each a zstd frame (or the plain UTF-8
   bytes, `codec` 'raw', where compressing does not pay) of at most PIECE_MAX bytes of text.

Why pieces: the old `update log set text = text || ?` rewrote the whole text on every flush
(quadratic; a 28 MB log held in memory several times at once), and a log indexed as one
FTS5 document made the writer tokenize it in one go (hundreds of MB). A piece is written
once, in the transaction that commits the output the runtime took (`append_logs`), so a
live task's output is readable, and a crash keeps every flushed piece, already indexed for
search. Pieces end at a line end where one is near (a word is not cut in two for search);
the last piece of a stream stays open while it is small (under PIECE_TARGET): the next
flush rewrites it with the new text, so a task printing a line a second still makes
~128 KB pieces, which compress well, not thousands of tiny rows.

Full-text search: each piece is one row of `log_fts`, a contentless FTS5 table (rowid =
the piece's id), so the index holds no second copy of the text. Deleting an entry from a
contentless table needs the text it was made from (`drop_pieces` decompresses them first).
Snippets are made from the piece's text (fulltext.py), at most SNIPPET_SOURCE characters of it.

Byte offsets are of the text encoded as UTF-8 (lone surrogates kept: `surrogatepass`), so
`log_page` can page through a log without reading it whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

import zstandard

from .exceptions import LedgerError
from .structs import struct

PIECE_TARGET = 128 * 1024  # bytes of text in a piece, cut at a line end near it
PIECE_MAX = 1024 * 1024  # hard cap: a line longer than this is cut (at a character boundary)
RAW_BELOW = 256  # a piece this small is stored as plain UTF-8: a zstd frame would not pay
LEVEL = 3
ENCODING = ("utf-8", "surrogatepass")

LOG_PIECE_DDL = (
    "create table if not exists log_piece (id integer primary key, "
    "task_id integer not null references task(id) on delete cascade, "
    "stream text not null, byte_start integer not null, line_start integer not null, "
    "bytes integer not null, newlines integer not null, codec text not null, "
    "data blob not null)"
)
LOG_PIECE_INDEX = "create unique index if not exists log_piece_task_stream_start on log_piece(task_id, stream, byte_start)"
LOG_FTS_DDL = "create virtual table if not exists log_fts using fts5(text, content = '', tokenize = 'unicode61')"
# Names migration 8 adds (schema.OUR_TABLES: what a ledger file may hold).
LOG_TABLES = ["log_piece"] + [
    f"log_fts{part}" for part in ("", "_data", "_idx", "_docsize", "_config")
]


def _compressor() -> zstandard.ZstdCompressor:
    # One per thread would be needed if shared; writers call this under the write lock.
    return zstandard.ZstdCompressor(level=LEVEL)


def has_pieces(conn: sqlite3.Connection) -> bool:
    """Whether this ledger stores logs in pieces (migration 8 ran). Asked of the table
    itself (a rowid lookup): finding it in sqlite_master would scan the schema."""
    try:
        conn.execute("select 1 from log_piece where id = 0").fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" not in str(e):
            raise
        return False
    return True


# -- writing ------------------------------------------------------------------------------


def start_logs(conn: sqlite3.Connection, tasks: list[tuple[int, str, str]]) -> None:
    """New task attempts' `log` rows (one per stream, text ''), and whatever they printed
    so far as pieces: (task pk, stdout, stderr) each. Called by the writer (writes.py) in
    the transaction inserting the tasks."""
    conn.executemany("insert into log(task_id, stream, text) values (?, ?, '')",
                     [(pk, stream) for pk, _, _ in tasks for stream in ("stdout", "stderr")])  # fmt: skip
    append_logs(conn, [(pk, stream, text) for pk, out, err in tasks
                       for stream, text in (("stdout", out), ("stderr", err)) if text])  # fmt: skip


def append_logs(conn: sqlite3.Connection, chunks: Iterable[tuple[int, str, str]]) -> None:
    """Add output to task attempts' streams: (task pk, stream, text) each; in the caller's
    write transaction."""
    cctx = None  # made for the first text (most tasks print nothing)
    for task_pk, stream, text in chunks:
        if text:
            if cctx is None:
                cctx = _compressor()
            _append(conn, cctx, task_pk, stream, text.encode(*ENCODING))


def _append(conn: sqlite3.Connection, cctx: zstandard.ZstdCompressor, task_pk: int,
            stream: str, data: bytes) -> None:  # fmt: skip
    last = conn.execute(
        "select id, byte_start, line_start, bytes, codec, data, newlines from log_piece "
        "where task_id = ? and stream = ? order by byte_start desc limit 1",
        (task_pk, stream),
    ).fetchone()
    reuse: int | None = None
    if last is None:
        start, line = _legacy_extent(conn, task_pk, stream)
    elif last[3] < PIECE_TARGET:  # the open last piece: rewritten with the new text
        reuse, start, line = last[0], last[1], last[2]
        old = decode_piece(last[4], last[5], last[3])
        _unindex(conn, reuse, old)
        data = old + data
    else:
        start, line = last[1] + last[3], last[2] + last[6]
    for piece in _cut(data):
        compressed, codec = _pack(cctx, piece)
        newlines = piece.count(b"\n")
        if reuse is not None:
            conn.execute(
                "update log_piece set bytes = ?, newlines = ?, codec = ?, data = ? where id = ?",
                (len(piece), newlines, codec, compressed, reuse),
            )
            pk, reuse = reuse, None
        else:
            pk = int(conn.execute(
                "insert into log_piece(task_id, stream, byte_start, line_start, bytes, "
                "newlines, codec, data) values (?, ?, ?, ?, ?, ?, ?, ?)",
                (task_pk, stream, start, line, len(piece), newlines, codec, compressed),
            ).lastrowid or 0)  # fmt: skip
        conn.execute("insert into log_fts(rowid, text) values (?, ?)", (pk, index_text(piece)))
        start += len(piece)
        line += newlines


def _legacy_extent(conn: sqlite3.Connection, task_pk: int, stream: str) -> tuple[int, int]:
    """(bytes, newlines) of a stream's text stored in `log.text` (before migration 8)."""
    row = conn.execute(
        "select length(cast(text as blob)), length(text) - length(replace(text, char(10), '')) "
        "from log where task_id = ? and stream = ?",
        (task_pk, stream),
    ).fetchone()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def _cut(data: bytes) -> Iterator[bytes]:
    """Pieces of at most PIECE_MAX bytes, each ending at the last line end before
    PIECE_TARGET (or the first after it, or at PIECE_MAX on a character boundary)."""
    pos, end = 0, len(data)
    while end - pos > PIECE_TARGET:
        cut = data.rfind(b"\n", pos, pos + PIECE_TARGET) + 1
        if cut <= pos:
            cut = data.find(b"\n", pos + PIECE_TARGET, pos + PIECE_MAX) + 1
        if cut <= pos:
            cut = pos + PIECE_MAX
            while cut < end and (data[cut] & 0xC0) == 0x80:  # not inside a character
                cut -= 1
        cut = min(cut, end)
        yield data[pos:cut]
        pos = cut
    if pos < end:
        yield data[pos:]


def _pack(cctx: zstandard.ZstdCompressor, piece: bytes) -> tuple[bytes, str]:
    if len(piece) >= RAW_BELOW:
        packed = cctx.compress(piece)
        if len(packed) < len(piece):
            return packed, "zstd"
    return piece, "raw"


def index_text(piece: bytes) -> str:
    """What the search index is given for a piece (a lone surrogate becomes U+FFFD)."""
    return piece.decode("utf-8", "replace")


def _unindex(conn: sqlite3.Connection, piece_pk: int, piece: bytes) -> None:
    # A contentless table forgets an entry given the very text it indexed.
    conn.execute("insert into log_fts(log_fts, rowid, text) values ('delete', ?, ?)",
                 (piece_pk, index_text(piece)))  # fmt: skip


def drop_pieces(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> int:
    """Forget the search entries of the pieces `where` selects (alias p), before those
    pieces are deleted (`rm`: deletes cascade from task to log_piece, not into log_fts).
    Returns how many."""
    if not has_pieces(conn):
        return 0
    n = 0
    for pk, codec, data, size in conn.execute(
        f"select p.id, p.codec, p.data, p.bytes from log_piece p {where}", params
    ).fetchall():
        try:
            _unindex(conn, pk, decode_piece(codec, data, size))
        except DamagedLog:  # its entry stays until `doctor --repair` rebuilds the index
            continue
        n += 1
    return n


# -- reading ------------------------------------------------------------------------------


# A piece that does not decompress (a damaged or forged file): one line, no traceback.
DamagedLog = LedgerError


def decode_piece(codec: str, data: bytes, claimed: int) -> bytes:
    """A piece's text bytes; never more than PIECE_MAX (a forged frame cannot make a reader
    allocate what its header claims)."""
    if codec == "raw":
        return bytes(data[:PIECE_MAX])
    if codec != "zstd":
        raise DamagedLog(f"a log piece has an unknown codec {codec!r}; the ledger is damaged: "
                         "run `ledgerflow doctor`")  # fmt: skip
    try:
        with zstandard.ZstdDecompressor().stream_reader(bytes(data)) as reader:
            out = reader.read(min(max(int(claimed), 0), PIECE_MAX) + 1)
    except (zstandard.ZstdError, TypeError, ValueError) as e:
        raise DamagedLog(f"a log piece does not decompress ({e}); the ledger is damaged: "
                         "run `ledgerflow doctor`") from None  # fmt: skip
    return out[:PIECE_MAX]


def _legacy(conn: sqlite3.Connection, task_pk: int, stream: str) -> str | None:
    row = conn.execute(
        "select text from log where task_id = ? and stream = ?", (task_pk, stream)
    ).fetchone()
    return None if row is None else row[0] or ""


def read_text(conn: sqlite3.Connection, task_pk: int, stream: str) -> str | None:
    """What a task attempt printed to `stream`, exactly (so far, for a running task); None
    when the attempt has no such stream (what Task.stdout reads)."""
    legacy = _legacy(conn, task_pk, stream)
    if not has_pieces(conn):
        return legacy
    parts = [decode_piece(c, d, n) for c, d, n in conn.execute(
        "select codec, data, bytes from log_piece where task_id = ? and stream = ? "
        "order by byte_start", (task_pk, stream))]  # fmt: skip
    if legacy is None and not parts:
        return None
    return (legacy or "") + b"".join(parts).decode(*ENCODING)


def read_both(conn: sqlite3.Connection, task_pk: int) -> dict[str, str]:
    """Both streams of a task attempt ('' for one it never printed to)."""
    return {s: read_text(conn, task_pk, s) or "" for s in ("stdout", "stderr")}


def total_bytes(conn: sqlite3.Connection, task_pk: int, stream: str) -> int:
    """The log's size: bytes of the stream's text (UTF-8), from the pieces' sizes (nothing
    is decompressed)."""
    return sum(_extent(conn, task_pk, stream)[:1])


def _extent(conn: sqlite3.Connection, task_pk: int, stream: str) -> tuple[int, int]:
    """(bytes, lines) of a stream: its legacy text's and its pieces'."""
    legacy_bytes, legacy_lines = _legacy_extent(conn, task_pk, stream)
    if not has_pieces(conn):
        return legacy_bytes, legacy_lines
    row = conn.execute(
        "select byte_start + bytes, line_start + newlines from log_piece where task_id = ? "
        "and stream = ? order by byte_start desc limit 1",
        (task_pk, stream),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (legacy_bytes, legacy_lines)


@struct(frozen=True)
class LogPage:
    """A page of a stream's text: `text` spans bytes [start, end) of the stream's UTF-8
    text (both at character boundaries) and starts at line `first_line` (0-based; lines
    counted by '\\n'). `total_bytes`/`total_lines` are the whole stream's so far: poll with
    start=end for what is new; `end == total_bytes` means the page reaches the end."""

    text: str
    start: int
    end: int
    first_line: int
    total_bytes: int
    total_lines: int


def log_page(conn: sqlite3.Connection, task_pk: int, stream: str, start: int | None = None,
             *, line: int | None = None, max_bytes: int = 256 * 1024,
             tail: bool = False) -> LogPage:  # fmt: skip
    """A page of at most `max_bytes` of a task attempt's `stream`, decompressing only the
    pieces it spans: from byte `start`, or from line `line` (0-based), or (`tail=True`) the
    last `max_bytes` from the first line start in them. A page that would start or end
    inside a character starts at that character / ends before it."""
    total, total_lines = _extent(conn, task_pk, stream)
    max_bytes = max(int(max_bytes), 4)
    if tail:
        start = max(total - max_bytes, 0)
    elif line is not None:
        start = _line_start(conn, task_pk, stream, max(int(line), 0), total)
    start = min(max(int(start or 0), 0), total)
    chunk, at, first_line = _read_range(conn, task_pk, stream, start,
                                        min(start + max_bytes, total))  # fmt: skip
    if tail and at > 0:  # from the first whole line of the window
        nl = chunk.find(b"\n")
        if 0 <= nl < len(chunk) - 1:
            chunk, at, first_line = chunk[nl + 1 :], at + nl + 1, first_line + 1
    chunk = chunk[: _whole_characters(chunk)]
    return LogPage(chunk.decode(*ENCODING), at, at + len(chunk), first_line, total,
                   total_lines)  # fmt: skip


def _whole_characters(data: bytes) -> int:
    """The length of `data` without a character cut off at its end."""
    for back in range(1, min(4, len(data)) + 1):
        lead = data[-back]
        if lead & 0xC0 != 0x80:  # the last character's first byte
            need = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4
            return len(data) - back if need > back else len(data)
    return len(data)


def _segments(conn: sqlite3.Connection, task_pk: int, stream: str, start: int,
              end: int) -> list[tuple[int, int, bytes]]:  # fmt: skip
    """(byte start, line start, bytes) of the legacy text and the pieces overlapping
    [start, end), in order."""
    found: list[tuple[int, int, bytes]] = []
    legacy = _legacy(conn, task_pk, stream)
    if legacy:
        found.append((0, 0, legacy.encode(*ENCODING)))
    if has_pieces(conn):
        first = conn.execute(
            "select max(byte_start) from log_piece where task_id = ? and stream = ? "
            "and byte_start <= ?", (task_pk, stream, start)).fetchone()[0]  # fmt: skip
        found += [(b, ln, decode_piece(c, d, n)) for b, ln, c, d, n in conn.execute(
            "select byte_start, line_start, codec, data, bytes from log_piece where task_id = ? "
            "and stream = ? and byte_start >= ? and byte_start < ? order by byte_start",
            (task_pk, stream, first or 0, max(end, start + 1)))]  # fmt: skip
    return found


def _read_range(conn: sqlite3.Connection, task_pk: int, stream: str, start: int,
                end: int) -> tuple[bytes, int, int]:  # fmt: skip
    """Bytes [start', end) of the stream, start' moved back to a character's start; with
    start' and the line number there."""
    out, at, at_line = bytearray(), -1, 0
    for b, ln, data in _segments(conn, task_pk, stream, start, end):
        if b + len(data) <= start or b >= end:
            continue
        lo = max(start - b, 0)
        if at < 0:
            while 0 < lo < len(data) and data[lo] & 0xC0 == 0x80:
                lo -= 1
            at, at_line = b + lo, ln + data.count(b"\n", 0, lo)
        out += data[lo : end - b]
    if at < 0:  # nothing from `start` on: the end of the text
        return b"", start, _extent(conn, task_pk, stream)[1]
    return bytes(out), at, at_line


def _line_start(conn: sqlite3.Connection, task_pk: int, stream: str, line: int,
                total: int) -> int:  # fmt: skip
    """The byte offset where line `line` (0-based) starts; `total` if there are fewer."""
    if line == 0:
        return 0
    segment: tuple[int, int, bytes] | None = None
    if has_pieces(conn):
        row = conn.execute(
            "select byte_start, line_start, codec, data, bytes from log_piece where task_id = ? "
            "and stream = ? and line_start < ? order by byte_start desc limit 1",
            (task_pk, stream, line),
        ).fetchone()
        if row is not None:
            segment = (row[0], row[1], decode_piece(row[2], row[3], row[4]))
    if segment is None:
        legacy = _legacy(conn, task_pk, stream)
        if not legacy:
            return total
        segment = (0, 0, legacy.encode(*ENCODING))
    b, at_line, data = segment
    pos = 0
    while at_line < line:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return total
        pos, at_line = nl + 1, at_line + 1
    return b + pos


# -- search index upkeep ------------------------------------------------------------------


def index_problems(conn: sqlite3.Connection) -> list[str]:
    """What doctor reports about log_fts: entries missing or left over."""
    if not has_pieces(conn):
        return []
    damaged = damaged_pieces(conn)
    problems = [f"{len(damaged)} log piece(s) are damaged (their text is not what they claim): "
                f"{', '.join(damaged[:5])}"] if damaged else []  # fmt: skip
    return problems + _index_counts(conn)


def damaged_pieces(conn: sqlite3.Connection) -> list[str]:
    """Pathspecs and streams of log pieces that do not decompress to the size they claim,
    one piece in memory at a time."""
    found = []
    for pk, task_pk, stream, codec, data, size in conn.execute(
        "select id, task_id, stream, codec, data, bytes from log_piece order by id"
    ):
        try:
            ok = len(decode_piece(codec, data, size)) == size
        except DamagedLog:
            ok = False
        if not ok:
            row = conn.execute(
                "select f.name || '/' || r.run_id || '/' || t.step || '/' || t.task_id from task t "
                "join run r on r.id = t.run_id join flow f on f.id = r.flow_id where t.id = ?",
                (task_pk,),
            ).fetchone()
            found.append(f"{row[0] if row else f'task {task_pk}'} {stream} (piece {pk})")
    return found


def _index_counts(conn: sqlite3.Connection) -> list[str]:
    indexed = conn.execute("select count(*) from log_fts").fetchone()[0]
    expected = conn.execute("select count(*) from log_piece").fetchone()[0]
    if indexed != expected:
        return [f"search index has {indexed} entries for {expected} log pieces"]
    orphans = conn.execute(
        "select count(*) from log_fts where rowid not in (select id from log_piece)"
    ).fetchone()[0]
    return [f"search index has {orphans} entries for deleted log pieces"] if orphans else []


def rebuild_index(conn: sqlite3.Connection) -> int:
    """log_fts anew from every piece, one piece in memory at a time; returns the entries."""
    if not has_pieces(conn):
        return 0
    conn.execute("insert into log_fts(log_fts) values ('delete-all')")
    n, last = 0, -1
    while True:  # a hundred pieces in memory at a time
        batch = conn.execute("select id, codec, data, bytes from log_piece where id > ? "
                             "order by id limit 100", (last,)).fetchall()  # fmt: skip
        if not batch:
            return n
        for pk, codec, data, size in batch:
            try:
                text = index_text(decode_piece(codec, data, size))
            except DamagedLog:  # doctor names it; the rest is indexed
                continue
            conn.execute("insert into log_fts(rowid, text) values (?, ?)", (pk, text))
            n += 1
        last = batch[-1][0]


# -- migration 8 --------------------------------------------------------------------------


def store_logs_in_pieces(conn: sqlite3.Connection) -> None:
    """Migration 8: logs move into compressed pieces (log_piece) indexed by the contentless
    log_fts. (schema.py's migration 8 then rebuilds task_fts without its copy of every log.)"""
    conn.execute(LOG_PIECE_DDL)
    conn.execute(LOG_PIECE_INDEX)
    conn.execute(LOG_FTS_DDL)
    cctx = _compressor()
    for task_pk, stream in conn.execute(
        "select task_id, stream from log where text != '' order by id"
    ).fetchall():
        (text,) = conn.execute("select text from log where task_id = ? and stream = ?",
                               (task_pk, stream)).fetchone()  # fmt: skip
        conn.execute("update log set text = '' where task_id = ? and stream = ?",
                     (task_pk, stream))  # fmt: skip
        _append(conn, cctx, task_pk, stream, text.encode(*ENCODING))


def copy_logs(source: sqlite3.Connection, conn: sqlite3.Connection, old_task: int,
              new_task: int) -> None:  # fmt: skip
    """`import`: a task attempt's logs from another ledger (legacy text or pieces), written
    anew here piece by piece (so they are indexed, and sizes are this writer's own)."""
    conn.executemany("insert into log(task_id, stream, text) values (?, ?, '')",
                     [(new_task, "stdout"), (new_task, "stderr")])  # fmt: skip
    cctx = _compressor()
    for stream in ("stdout", "stderr"):
        legacy = _legacy(source, old_task, stream)
        if legacy:
            _append(conn, cctx, new_task, stream, legacy.encode(*ENCODING))
        if has_pieces(source):
            for c, d, n in source.execute(
                "select codec, data, bytes from log_piece where task_id = ? and stream = ? "
                "order by byte_start", (old_task, stream)):  # fmt: skip
                _append(conn, cctx, new_task, stream, decode_piece(c, d, n))


# -- stats --------------------------------------------------------------------------------


def log_figures(conn: sqlite3.Connection) -> dict[str, int]:
    """`stats`: the logs' logical bytes (what tasks printed) and stored bytes (as kept)."""
    legacy = conn.execute("select coalesce(sum(length(cast(text as blob))), 0) from log "
                          "where text != ''").fetchone()[0]  # fmt: skip
    logical, stored, pieces = legacy, legacy, 0
    if has_pieces(conn):
        b, s, n = conn.execute("select coalesce(sum(bytes), 0), coalesce(sum(length(data)), 0), "
                               "count(*) from log_piece").fetchone()  # fmt: skip
        logical, stored, pieces = logical + b, stored + s, n
    return {"logical_bytes": int(logical), "stored_bytes": int(stored), "pieces": int(pieces)}
