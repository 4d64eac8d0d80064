"""`ledgerflow ui`: the pages over real ledgers (flows run by the real CLI), read with
urllib and with a real browser (Debian's headless chromium), and a received ledger holding
a malicious pickle that browsing must never unpickle."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow import logstore
from ledgerflow.liveness import hostname
from ledgerflow.ui import make_server, tools

from .helpers import FLOWS, query, run_flow

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed here (apt-get install -y chromium; .ci/run "
           "installs it)")  # fmt: skip


def chromium(url: str, out_dir: Path, screenshot: str | None = None,
             budget_ms: int | None = None) -> str:  # fmt: skip
    """The DOM of a page after it loaded in headless chromium (and a screenshot of it)."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=out_dir)
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--window-size=1300,1000",
            "--dump-dom"]  # fmt: skip
    if budget_ms:
        args.append(f"--virtual-time-budget={budget_ms}")
    if screenshot:
        args.append(f"--screenshot={out_dir / screenshot}")
    proc = subprocess.run([*args, url], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if screenshot:
        assert (out_dir / screenshot).stat().st_size > 5000  # a real picture, not a blank
    return proc.stdout


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A ledger with a card flow, a foreach flow and a failed run."""
    folder = tmp_path_factory.mktemp("ui")
    db = folder / "ledgerflow.db"
    ids = {}
    for name, flow, args, code in (
        ("card", FLOWS / "cards" / "card_flow.py", (), 0),
        ("foreach", FLOWS / "client" / "foreach_flow.py", ("--tag", "nightly"), 0),
        ("failed", FLOWS / "client" / "linear_flow.py", ("--fail", "true"), 1),
        ("linear", FLOWS / "client" / "linear_flow.py", ("--alpha", "5"), 0),
    ):
        run_flow(flow, *args, "--run-id-file", str(folder / name), db=db, check=code)
        ids[name] = (folder / name).read_text().strip()
    ids["db"] = str(db)
    return ids


def _serve(db: str | Path, **kw) -> tuple[object, str]:
    server, url = make_server(db, port=0, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url.rstrip("/")


@pytest.fixture
def ui(ledger) -> Iterator[str]:
    server, url = _serve(ledger["db"])
    yield url
    server.shutdown()
    server.server_close()


def get(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(url, data=body, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# -- pages, read as HTML --------------------------------------------------------------------


def test_runs_list_newest_first_with_filters(ui, ledger):
    status, html = get(ui + "/")
    assert status == 200
    order = [ledger[k] for k in ("linear", "failed", "foreach", "card")]
    assert [m for m in re.findall(r'href="/run/\w+/(\d+)"', html)] == order
    _, only = get(ui + "/?flow=LinearFlow")
    assert ledger["linear"] in only and ledger["card"] not in only
    _, failed = get(ui + "/?status=failed")
    assert ledger["failed"] in failed and ledger["linear"] not in failed
    _, tagged = get(ui + "/?tag=nightly")
    assert ledger["foreach"] in tagged and ledger["linear"] not in tagged


def test_run_page_draws_the_dag_and_the_timeline(ui, ledger):
    status, html = get(f"{ui}/run/LinearFlow/{ledger['failed']}")
    assert status == 200
    assert html.count('class="lf-node"') == 3
    assert 'data-step="middle" data-status="failed"' in html
    assert 'data-step="end" data-status="none"' in html  # never ran
    assert html.count('class="lf-bar"') == 2  # start and middle ran


def test_task_page_shows_logs_artifacts_cards(ui, ledger):
    _, html = get(f"{ui}/task/LinearFlow/{ledger['linear']}/start/1")
    assert "hello from start" in html and "warning from start" in html
    assert "datetime.date" in html and "pickle" in html  # the type and encoding, no value
    _, failed = get(f"{ui}/task/LinearFlow/{ledger['failed']}/middle/2")
    assert "builtins.ValueError" in failed and "boom 42" in failed
    _, cards = get(f"{ui}/task/CardFlow/{ledger['card']}/two/2")
    assert cards.count('<iframe class="card-frame" sandbox=""') == 2
    card_ids = re.findall(r'src="/card/(\d+)"', cards)
    status, card = get(f"{ui}/card/{card_ids[1]}")
    assert status == 200 and "Summary card" in card


def test_artifact_page_shows_json_values_and_asks_before_unpickling(ui, ledger):
    _, html = get(f"{ui}/artifact/LinearFlow/{ledger['linear']}/start/1/payload")
    assert "&quot;numbers&quot;" in html  # a JSON value is shown (decoding JSON runs nothing)
    _, html = get(f"{ui}/artifact/LinearFlow/{ledger['linear']}/start/1/when")
    assert "Load value (unpickles)" in html and "datetime.date(2020" not in html
    # Written on this machine: the Client API's trust rule lets an explicit load through.
    _, loaded = get(f"{ui}/artifact/LinearFlow/{ledger['linear']}/start/1/when", {"load": "1"})
    assert "datetime.date(2020, 1, 2)" in loaded


def test_search_diff_and_sql_pages(ui, ledger):
    _, html = get(ui + "/search?q=numbers")
    assert f"LinearFlow/{ledger['linear']}/start/1/payload" in html
    _, bad = get(ui + "/search?q=" + urllib.parse.quote('"unterminated'))
    assert 'class="err"' in bad
    a, b = f"LinearFlow/{ledger['linear']}", f"LinearFlow/{ledger['failed']}"
    _, diff = get(ui + "/diff?" + urllib.parse.urlencode({"a": a, "b": b}))
    assert "<pre>5</pre>" in diff and "<pre>3</pre>" in diff  # alpha side by side
    _, nodiff = get(ui + "/diff?" + urllib.parse.urlencode({"a": a, "b": "Nope/1"}))
    assert "no run &#x27;Nope/1&#x27;" in nodiff
    _, sql = get(
        ui
        + "/sql?"
        + urllib.parse.urlencode({"q": "select run_id, status from runs where status = 'failed'"})
    )
    assert ledger["failed"] in sql and "1 row(s)" in sql
    _, refused = get(ui + "/sql?" + urllib.parse.urlencode({"q": "delete from run"}))
    assert "read-only" in refused
    assert query(Path(ledger["db"]), "select count(*) from run") == [(4,)]


def test_sql_page_stops_a_runaway_query(ledger, monkeypatch):
    monkeypatch.setattr(tools, "SQL_SECONDS", 0.2)
    endless = (
        "with recursive n(i) as (select 1 union all select i + 1 from n) select count(*) from n"
    )
    with pytest.raises(Exception, match="longer than 0.2 s"):
        tools.run_sql(ledger["db"], endless)


def test_only_this_server_name_is_answered(ui):
    request = urllib.request.Request(ui + "/", headers={"Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 403


def test_unknown_pages_are_404(ui, ledger):
    for path in (
        "/run/NoFlow/1",
        f"/task/LinearFlow/{ledger['linear']}/start/99",
        "/card/999",
        "/nothing/here",
        f"/artifact/LinearFlow/{ledger['linear']}/start/1/nope",
    ):
        status, html = get(ui + path)
        assert status == 404 and "Not found" in html, path


def test_runs_are_paged_by_keyset(tmp_path, ledger):
    db = tmp_path / "many.db"
    shutil.copy(ledger["db"], db)
    conn = sqlite3.connect(db)
    cols = (
        "flow_id, status, finished_at, params, user, host, pid, heartbeat_at, "
        "script_name, code, origin_run_id, python_version, ledgerflow_version, "
        "machine_id, graph_info"
    )
    for i in range(120):
        conn.execute(f"insert into run(run_id, created_at, {cols}) select ?, ?, {cols} from run "
                     "where run_id = ?", (f"9{i:05d}", f"2030-01-01T00:{i // 60:02d}:{i % 60:02d}"
                                          ".000000Z", ledger["linear"]))  # fmt: skip
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        seen, page, pages = [], url + "/?flow=LinearFlow", 0
        while page:
            _, html = get(page)
            seen += re.findall(r'href="/run/LinearFlow/(\d+)"', html)
            more = re.search(r'href="(/\?[^"]*after=[^"]*)"', html)
            page = url + more.group(1).replace("&amp;", "&") if more else None
            pages += 1
        assert pages == 3 and len(seen) == 122 and len(set(seen)) == 122
        assert seen[:3] == ["900119", "900118", "900117"]
    finally:
        server.shutdown()
        server.server_close()


def test_browsing_never_writes_nor_marks_runs_crashed(tmp_path, ledger):
    db = tmp_path / "copy.db"
    shutil.copy(ledger["db"], db)
    conn = sqlite3.connect(db)
    # A run whose process is gone: the UI shows it crashed but must not write that down.
    conn.execute(
        "update run set status = 'running', finished_at = null, host = ?, pid = ? where run_id = ?",
        (hostname(), 2**22 + 7, ledger["linear"]),
    )
    conn.commit()
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    server, url = _serve(db)
    try:
        pages = crawl(url)
        assert len(pages) > 40
        _, html = get(url + "/?status=crashed")
        assert ledger["linear"] in html
    finally:
        server.shutdown()
        server.server_close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert query(db, "select status from run where run_id = ?", (ledger["linear"],)) == [
        ("running",)
    ]


def crawl(url: str, post_loads: bool = False) -> dict[str, str]:
    """Every page reachable from the runs list (and, with post_loads, every artifact's
    'Load value' button pressed)."""
    seen: dict[str, str] = {}
    todo = ["/"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        status, html = get(url + path)
        assert status == 200, (path, html[-500:])
        seen[path] = html
        if post_loads and path.startswith("/artifact/"):
            status, loaded = get(url + path, {"load": "1"})
            assert status == 200
            seen[path + " (load)"] = loaded
        for link in re.findall(r'(?:href|src|data-poll)="(/[^"]*)"', html):
            link = link.replace("&amp;", "&")
            if link not in seen and not link.startswith("/api/"):
                todo.append(link)
    return seen


# -- a received ledger with a malicious pickle ------------------------------------------------


@pytest.fixture
def evil_ledger(tmp_path, monkeypatch) -> tuple[Path, Path, str]:
    marker = tmp_path / "MARKER"
    db = tmp_path / "received.db"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    # Made by someone else: under their trust store, so it is not one of this user's ledgers.
    monkeypatch.setenv("LEDGERFLOW_TRUST_STORE", str(tmp_path / "their-trust.json"))
    run_flow(FLOWS / "cards" / "evil_flow.py", "--run-id-file", str(tmp_path / "id"), db=db)
    monkeypatch.delenv("LEDGERFLOW_TRUST_STORE")
    run_id = (tmp_path / "id").read_text().strip()
    # Tamper as an attacker could: a card row pointing at the pickle's blob.
    conn = sqlite3.connect(db)
    conn.execute(
        "insert into card(task_id, seq, type, sha) select a.task_id, 1, 'default', "
        "a.sha from artifact a where a.name = 'evil'"
    )
    conn.commit()
    conn.close()
    assert not marker.exists()
    return db, marker, run_id


def test_browsing_a_received_ledger_never_unpickles(evil_ledger, tmp_path):
    db, marker, run_id = evil_ledger
    server, url = _serve(db)
    try:
        pages = crawl(url, post_loads=True)
        refused = pages[f"/artifact/EvilFlow/{run_id}/start/1/evil (load)"]
        assert "Not loaded" in refused and "a ledger you have not trusted" in refused
        assert "<script>alert(1)</script>" not in "".join(pages.values())
        if CHROMIUM:
            for path in (
                "/",
                f"/run/EvilFlow/{run_id}",
                f"/task/EvilFlow/{run_id}/start/1",
                f"/artifact/EvilFlow/{run_id}/start/1/evil",
                "/card/1",
                "/card/2",
                "/search?q=evil",
            ):
                chromium(url + path, tmp_path, budget_ms=2000)
        assert not marker.exists(), "browsing unpickled the malicious value"
    finally:
        server.shutdown()
        server.server_close()
    # The same button on a server started with --trust does load it: the marker works.
    server, url = _serve(db, trust=True)
    try:
        get(f"{url}/artifact/EvilFlow/{run_id}/start/1/evil", {"load": "1"})
    finally:
        server.shutdown()
        server.server_close()
    assert marker.read_text() == "X\n"


# -- in a real browser ------------------------------------------------------------------------


@needs_chromium
def test_in_a_browser_runs_run_dag_card_artifact_search_sql(ui, ledger, tmp_path):
    dom = chromium(ui + "/", tmp_path, "runs.png")
    assert dom.count('href="/run/') == 4
    run_path = f"/run/ForeachFlow/{ledger['foreach']}"
    assert f'href="{run_path}"' in dom
    dom = chromium(ui + run_path, tmp_path, "run.png")
    graph = json.loads(
        query(
            Path(ledger["db"]), "select graph_info from run where run_id = ?", (ledger["foreach"],)
        )[0][0]
    )
    nodes = re.findall(r'<g class="lf-node" data-step="(\w+)" data-status="(\w+)"', dom)
    assert sorted(s for s, _ in nodes) == sorted(graph["steps"])  # one node per step
    assert {status for _, status in nodes} == {"succeeded"}
    assert dom.count('class="lf-bar"') == 10  # the timeline has every task
    task = f"/task/CardFlow/{ledger['card']}/start/1"
    dom = chromium(ui + task, tmp_path, "task-with-card.png")
    (card_id,) = re.findall(r'src="/card/(\d+)"', dom)
    dom = chromium(f"{ui}/card/{card_id}", tmp_path, "card.png")
    assert "Training report" in dom and 'class="lf-vega"' in dom
    dom = chromium(
        f"{ui}/artifact/CardFlow/{ledger['card']}/start/1/scores", tmp_path, "artifact.png"
    )
    assert "&quot;a&quot;: 1" in dom or '"a": 1' in dom
    dom = chromium(ui + "/search?q=scores", tmp_path, "search.png")
    assert f"CardFlow/{ledger['card']}/start/1/scores" in dom
    sql = urllib.parse.urlencode(
        {"q": "select step, count(*) as n from tasks group by step order by step"}
    )
    dom = chromium(f"{ui}/sql?{sql}", tmp_path, "sql.png")
    assert 'class="sql-result"' in dom and "<td>body</td><td>3</td>" in dom
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "artifact.png",
        "card.png",
        "run.png",
        "runs.png",
        "search.png",
        "sql.png",
        "task-with-card.png",
    ]


@needs_chromium
def test_logs_update_in_the_browser_while_the_run_runs(tmp_path, ledger):
    db = tmp_path / "live.db"
    shutil.copy(ledger["db"], db)
    conn = sqlite3.connect(db)
    run_pk = conn.execute("select id from run where run_id = ?", (ledger["linear"],)).fetchone()[0]
    # This very process plays the running run (alive, on this host); `end` is still running.
    conn.execute(
        "update run set status = 'running', finished_at = null, host = ?, pid = ?, "
        "heartbeat_at = ? where id = ?",
        (hostname(), os.getpid(), "2099-01-01T00:00:00.000000Z", run_pk),
    )
    task_pk = conn.execute(
        "select id from task where run_id = ? and step = 'end'", (run_pk,)
    ).fetchone()[0]
    conn.execute("update task set status = 'running', finished_at = null where id = ?", (task_pk,))
    conn.execute(
        "update log set text = 'line one\n' where task_id = ? and stream = 'stdout'", (task_pk,)
    )
    conn.commit()
    conn.close()
    server, url = _serve(db)
    polled = []

    class Writes(server.RequestHandlerClass):
        """The task prints a second line just as the page first polls for news."""

        def do_GET(self):
            if self.path.startswith("/api/logs/") and not polled:
                with sqlite3.connect(db) as c:
                    c.execute(
                        "update log set text = 'line one\nline two\n' where task_id = ? "
                        "and stream = 'stdout'",
                        (task_pk,),
                    )
            if self.path.startswith("/api/logs/"):
                polled.append(self.path)
            super().do_GET()

    server.RequestHandlerClass = Writes
    try:
        page = f"{url}/task/LinearFlow/{ledger['linear']}/end/3"
        _, first = get(page)
        assert "line one" in first and "line two" not in first and 'data-live="1"' in first
        dom = chromium(page, tmp_path, "live-logs.png", budget_ms=6000)
        assert "line one\nline two" in dom
        assert len(polled) >= 2  # it went on polling while the task ran
    finally:
        server.shutdown()
        server.server_close()


def test_ui_command_refuses_a_missing_ledger_and_a_busy_port(tmp_path, ledger):
    from click.testing import CliRunner

    from ledgerflow.cli.main import cli

    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "ui"])
    assert result.exit_code == 1 and "no ledger at" in result.output
    server, url = _serve(ledger["db"])
    try:
        port = url.rsplit(":", 1)[1]
        result = CliRunner().invoke(cli, ["--db", ledger["db"], "ui", "--port", port])
        assert result.exit_code == 1 and "choose another --port" in result.output
        assert "Traceback" not in result.output
    finally:
        server.shutdown()
        server.server_close()


# -- a received ledger with script and junk in every column the UI shows (issue 30) ----------

PAYLOAD = "<img src=x onerror=alert(1)>\"'<script>document.title='PWNED'</script>"
RAW_MARKERS = ("<img src=x", "<script>document")


def _poison(db: Path, run_id: str) -> None:
    """Write PAYLOAD into every column the UI shows, as a received file can: text in INTEGER
    columns (artifact size, task attempt and foreach index), in JSON columns, in names."""
    p = PAYLOAD
    conn = sqlite3.connect(db)
    run_pk = conn.execute("select id from run where run_id = ?", (run_id,)).fetchone()[0]
    graph = json.loads(conn.execute("select graph_info from run where id = ?", (run_pk,))
                       .fetchone()[0])  # fmt: skip
    graph["steps"][p] = {"name": p, "type": p, "next": ["end", p], "foreach_artifact": p}
    conn.execute("update run set user = ?, host = ?, params = ?, graph_info = ?, origin_run_id"
                 " = ?, script_name = ? where id = ?",
                 (p, p, json.dumps({p: p, "n": [p]}), json.dumps(graph), p, p, run_pk))  # fmt: skip
    conn.execute("insert into tag(run_id, tag, system) values (?, ?, 0)", (run_pk, p))
    conn.execute("update task set status = ?, attempt = ?, foreach_index = ?, foreach_stack = ?,"
                 " exception_type = ?, exception = ?, traceback = ?, origin_pathspec = ?"
                 " where run_id = ? and step = 'middle'",
                 (p, p, p, json.dumps([[p, p, p, p, p]]), p, p, p, p, run_pk))  # fmt: skip
    conn.execute("update task set step = ?, task_id = ?, started_at = ?, finished_at = ? "
                 "where run_id = ? and step = 'end'", (p, p, p, p, run_pk))  # fmt: skip
    starts = conn.execute("select id from task where run_id = ? and step = 'start'",
                          (run_pk,)).fetchone()[0]  # fmt: skip
    conn.execute("update artifact set type = ?, size = ?, value = ?, inherited = ? where "
                 "task_id = ? and name = 'x'", (p, p, p, p, starts))  # fmt: skip
    conn.execute("update artifact set name = ? where task_id = ? and name = 'payload'", (p, starts))
    conn.execute("update artifact set size = ? where task_id = ? and name = 'when'", (p, starts))
    conn.execute("update blob set preview = ?, python_version = ? where sha in (select sha from"
                 " artifact where task_id = ?)", (p, p, starts))  # fmt: skip
    conn.execute("update log set text = ? where task_id = ?", (p + "\n", starts))
    conn.commit()
    conn.close()


@pytest.fixture
def poisoned(tmp_path, ledger) -> tuple[Path, str]:
    db = tmp_path / "poisoned.db"
    shutil.copy(ledger["db"], db)
    _poison(db, ledger["linear"])
    return db, ledger["linear"]


def test_every_page_escapes_a_payload_in_every_column(poisoned, tmp_path):
    db, run_id = poisoned
    server, url = _serve(db)
    try:
        pages = crawl(url)
        extra = ["/search?q=img", "/search?q=script&kind=log", f"/diff?a=LinearFlow/{run_id}"
                 f"&b=LinearFlow/{run_id}", "/sql?q=" + urllib.parse.quote(
                     "select user, host, params from run")]  # fmt: skip
        for path in extra:
            status, html = get(url + path)
            assert status == 200, (path, html[-300:])
            pages[path] = html
        assert any(f"/task/LinearFlow/{run_id}/" in p for p in pages)
        assert any("PWNED" in html for html in pages.values())  # the payload is there, escaped
        downloads = [p for p in pages if p.startswith("/download/")]
        assert downloads  # a log's download is the log as it is: a plain-text attachment
        with urllib.request.urlopen(url + downloads[0]) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            assert r.headers["Content-Disposition"].startswith("attachment")
        for path, html in pages.items():
            if path.startswith(("/download/", "/static/")):
                continue
            for marker in RAW_MARKERS:
                assert marker not in html, (path, marker)
        with urllib.request.urlopen(url + "/") as r:
            csp = r.headers["Content-Security-Policy"]
        policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert policy["script-src"] == "'self'"
        assert all(
            "<script>" not in html for p, html in pages.items() if "/download/" not in p
        )  # no inline script at all
        if CHROMIUM:
            for path in ("/", f"/run/LinearFlow/{run_id}", f"/task/LinearFlow/{run_id}/start/1",
                         f"/task/LinearFlow/{run_id}/middle/2"):  # fmt: skip
                dom = chromium(url + path, tmp_path, budget_ms=1500)
                assert "<title>PWNED" not in dom and '<img src="x"' not in dom, path
    finally:
        server.shutdown()
        server.server_close()


def test_invalid_utf8_and_malformed_graphs_give_pages_not_500s(tmp_path, ledger):
    db = tmp_path / "junk.db"
    shutil.copy(ledger["db"], db)
    conn = sqlite3.connect(db)
    ids = {}
    graphs = {
        "deep": json.dumps(
            {"start_step": "s0", "steps": {f"s{i}": {"next": [f"s{i + 1}"]} for i in range(20_000)}}
        ),  # fmt: skip
        "list": json.dumps({"steps": [1, 2]}),
        "types": json.dumps({"start_step": 7, "steps": {"start": {"next": 5}, "end": []}}),
        "array": "[]",
        "text": "not json {",
    }
    for name, graph in graphs.items():
        rid = f"77{len(ids)}"
        conn.execute("insert into run(flow_id, run_id, status, created_at, params, graph_info) "
                     "select flow_id, ?, status, created_at, params, ? from run where run_id = ?",
                     (rid, graph, ledger["linear"]))  # fmt: skip
        ids[name] = rid
    conn.execute("update run set user = cast(x'41ff42' as text), host = cast(x'c3' as text)"
                 " where run_id = ?", (ledger["linear"],))  # fmt: skip
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        status, html = get(f"{url}/run/LinearFlow/{ids['deep']}")
        assert status == 200 and "20,000 steps, too many to draw" in html
        assert "steps 1–100 of 20,000" in html and "page=2" in html
        status, html = get(f"{url}/run/LinearFlow/{ids['deep']}?page=200")
        assert status == 200 and "s19999" in html
        for name, said in (("list", "no &#x27;steps&#x27; object"),
                           ("types", "&#x27;next&#x27; that is not a list"),
                           ("array", "graph_info is a JSON list"),
                           ("text", "graph_info is not valid JSON")):  # fmt: skip
            status, html = get(f"{url}/run/LinearFlow/{ids[name]}")
            assert status == 200 and 'class="warn"' in html and said in html, name
        status, html = get(f"{url}/run/LinearFlow/{ledger['linear']}")
        assert status == 200 and "A\ufffdB" in html
        status, html = get(url + "/")
        assert status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_a_forged_size_claim_does_not_decode_a_large_json_value(tmp_path):
    db = tmp_path / "big.db"
    run_flow(FLOWS / "ui" / "big_json_flow.py", "--run-id-file", str(tmp_path / "id"), db=db)
    run_id = (tmp_path / "id").read_text().strip()
    conn = sqlite3.connect(db)
    conn.execute("update artifact set size = 1 where name = 'big'")  # the row lies
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        status, html = get(f"{url}/artifact/BigJsonFlow/{run_id}/start/1/big")
        assert status == 200 and len(html) < 100_000
        assert "12,000,002 bytes, too large to show here" in html
        status, html = get(f"{url}/artifact/BigJsonFlow/{run_id}/start/1/small")
        assert "2 records × 2 columns" in html and "<th>y</th>" in html  # its structure
    finally:
        server.shutdown()
        server.server_close()


def test_the_diff_page_does_not_decode_a_value_by_its_forged_size(tmp_path):
    db = tmp_path / "big.db"
    for name in ("a", "b"):
        run_flow(FLOWS / "ui" / "big_json_flow.py", "--run-id-file", str(tmp_path / name), db=db)
    a, b = ((tmp_path / n).read_text().strip() for n in ("a", "b"))
    conn = sqlite3.connect(db)  # two different big values, each claiming one byte
    run_b = conn.execute("select id from run where run_id = ?", (b,)).fetchone()[0]
    conn.execute("update artifact set size = 1 where name = 'big'")
    conn.execute("update artifact set sha = (select sha from artifact where name = 'small' "
                 "limit 1) where name = 'big' and task_id in (select id from task where "
                 "run_id = ?)", (run_b,))  # fmt: skip
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        status, html = get(f"{url}/diff?a=BigJsonFlow/{a}&b=BigJsonFlow/{b}")
        assert status == 200 and "changed big" in html and len(html) < 100_000
        assert "json, 1 bytes, sha" in html  # its (claimed) size and SHA, not the value
    finally:
        server.shutdown()
        server.server_close()


# -- what a person sees: wide runs, live runs, diff, search, tasks (issue 28) ----------------


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A 200-task foreach, a 150-task one with other parameters, and a retried task."""
    folder = tmp_path_factory.mktemp("wide")
    db = folder / "ledgerflow.db"
    ids = {"db": str(db)}
    for name, flow, args in (
        ("a", FLOWS / "ui" / "wide_flow.py", ("--max-num-splits", "300")),
        ("b", FLOWS / "ui" / "wide_flow.py", ("--max-num-splits", "300", "--width", "150",
                                             "--rate", "0.2")),
        ("retry", FLOWS / "control" / "retry_flow.py", ()),
    ):  # fmt: skip
        run_flow(flow, *args, "--run-id-file", str(folder / name), db=db)
        ids[name] = (folder / name).read_text().strip()
    return ids


@pytest.fixture
def wide_ui(wide) -> Iterator[str]:
    server, url = _serve(wide["db"])
    yield url
    server.shutdown()
    server.server_close()


def test_a_wide_step_is_one_timeline_row_and_a_counted_graph_node(wide_ui, wide):
    status, html = get(f"{wide_ui}/run/WideFlow/{wide['a']}")
    assert status == 200
    assert html.count('class="lf-step-bar"') == 1 and "fan ×200" in html
    assert html.count('class="lf-bar"') == 3  # start, join and end, task by task
    assert 'data-step="fan" data-status="succeeded" data-tasks="200"' in html
    assert "×200 tasks" in html  # the width on the graph node
    (height,) = re.findall(r'class="lf-gantt" width="\d+" height="(\d+)"', html)
    assert int(height) < 200
    assert re.search(r"<td>200 succeeded</td>.*?\d+\.\d+s / \d+\.\d+s / \d+\.\d+s", html)


@needs_chromium
def test_a_wide_run_page_in_a_browser_is_one_screen_of_timeline(wide_ui, wide, tmp_path):
    dom = chromium(f"{wide_ui}/run/WideFlow/{wide['a']}", tmp_path, "wide-run.png")
    assert dom.count('class="lf-step-bar"') == 1 and dom.count('class="lf-bar"') == 3
    steps_table = dom.index("<h2>Steps</h2>")
    assert dom.index('class="lf-gantt"') < steps_table  # the steps follow a 4-row timeline
    assert dom.count('data-tasks="200"') == 1


def test_a_step_pages_its_tasks_by_keyset(wide_ui, wide):
    seen, page, pages = [], f"/step/WideFlow/{wide['a']}/fan", 0
    while page:
        status, html = get(wide_ui + page)
        assert status == 200 and "200 tasks" in html
        seen += re.findall(rf'href="/task/WideFlow/{wide["a"]}/fan/(\d+)"', html)
        more = re.search(r'href="(/step/[^"]*after=[^"]*)"', html)
        page = more.group(1).replace("&amp;", "&") if more else None
        pages += 1
    assert pages == 4 and len(seen) == len(set(seen)) == 200
    assert seen == sorted(seen, key=int)


def test_the_diff_page_says_what_the_cli_says(wide_ui, wide):
    from click.testing import CliRunner

    from ledgerflow.cli.main import cli

    a, b = f"WideFlow/{wide['a']}", f"WideFlow/{wide['b']}"
    cli_out = CliRunner().invoke(cli, ["--db", wide["db"], "diff", a, b]).output
    assert "fan: 200 tasks in A, 150 in B" in cli_out
    _, html = get(f"{wide_ui}/diff?" + urllib.parse.urlencode({"a": a, "b": b}))
    assert "200 tasks in A, 150 in B" in html and "50 tasks only in A" in html
    assert re.search(r"<td>width</td><td><code>200</code></td><td><code>150</code></td>", html)
    assert "changed items, rate, summary, width" in html and "changed total" in html
    assert f'href="/task/WideFlow/{wide["a"]}/fan/' in html  # the tasks only in A, linked


def test_search_finds_logs_and_errors_like_the_cli_with_working_links(wide_ui, wide, ui, ledger):
    _, html = get(wide_ui + "/search?q=squared")
    assert "1–50 of more than 50 matches" in html
    rows = re.findall(r'<td>log</td><td><a href="([^"]+)">', html)
    assert len(rows) == 50
    status, task = get(wide_ui + rows[0].replace("&amp;", "&"))
    assert status == 200 and "<mark>squared</mark>" in task
    _, last = get(wide_ui + "/search?q=squared&page=7")  # 200 + 150 fan tasks printed it
    assert "301–350 of 350 matches" in last and "next →" not in last and "← previous" in last
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d", html)  # local + offset
    _, only_logs = get(wide_ui + "/search?q=squared&kind=artifact")
    assert "No matches." in only_logs
    _, err = get(ui + "/search?q=boom")
    (href,) = re.findall(r'<td>exception</td><td><a href="([^"]+)">', err)
    status, task = get(ui + href.replace("&amp;", "&"))
    assert status == 200 and 'id="exception"' in task and "boom 42" in task
    assert "<mark>boom</mark>" in err


def test_the_task_page_shows_foreach_input_and_attempts(wide_ui, wide):
    _, html = get(f"{wide_ui}/task/WideFlow/{wide['a']}/fan/5")
    assert "index <b>3</b> of 200 over <code>items</code>" in html
    assert "input <code>3</code>" in html
    _, html = get(f"{wide_ui}/task/RetryFlow/{wide['retry']}/flaky/2")
    assert "attempt 1 of 2" in html and 'class="attempts"' in html
    assert "ConnectionError" in html  # the first attempt's failure, in the history
    status, first = get(f"{wide_ui}/task/RetryFlow/{wide['retry']}/flaky/2?attempt=0")
    assert status == 200 and "attempt 0 of 2" in first and "transient failure" in first


def test_a_running_run_shows_no_finished_time(tmp_path, wide):
    db = tmp_path / "live.db"
    shutil.copy(wide["db"], db)
    conn = sqlite3.connect(db)
    conn.execute("update run set status = 'running', finished_at = null, host = ?, pid = ?, "
                 "heartbeat_at = '2099-01-01T00:00:00.000000Z' where run_id = ?",
                 (hostname(), os.getpid(), wide["a"]))  # fmt: skip
    conn.execute("update task set status = 'running', finished_at = null where step = 'end' "
                 "and run_id = (select id from run where run_id = ?)", (wide["a"],))  # fmt: skip
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        _, html = get(f"{url}/run/WideFlow/{wide['a']}")
        assert "not yet (running)" in html and "running for" in html
        _, task = get(f"{url}/task/WideFlow/{wide['a']}/end/203")
        assert re.search(r"started [^<]+ · running for \d", task) and "· </div>" not in task
    finally:
        server.shutdown()
        server.server_close()


def test_vega_charts_tick_at_round_numbers():
    from ledgerflow.cards.vega import vega_to_svg

    spec = {"mark": "line", "encoding": {"x": {"field": "x"}, "y": {"field": "y"}},
            "data": {"values": [{"x": i, "y": i * 0.09755} for i in range(11)]}}  # fmt: skip
    ticks = re.findall(r'class="lf-tick">([^<]*)<', vega_to_svg(spec) or "")
    assert ticks == ["0", "0.25", "0.5", "0.75", "1"]


def test_a_long_log_shows_its_tail_pages_back_downloads_and_polls_by_offset(tmp_path, ledger):
    db = tmp_path / "log.db"
    shutil.copy(ledger["db"], db)
    lines = "".join(f"line {i:06d} of the long log\n" for i in range(20_000))  # 580,000 bytes
    conn = sqlite3.connect(db)
    task_pk = conn.execute("select t.id from task t join run r on r.id = t.run_id where "
                           "r.run_id = ? and t.step = 'start'", (ledger["linear"],)).fetchone()[0]  # fmt: skip
    # The task printed this, as the writer stores it (compressed pieces, logstore.py).
    where = "where p.task_id = ? and p.stream = 'stdout'"
    logstore.drop_pieces(conn, where, (task_pk,))
    conn.execute("delete from log_piece where task_id = ? and stream = 'stdout'", (task_pk,))
    logstore.append_logs(conn, [(task_pk, "stdout", lines)])
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        _, page = get(f"{url}/task/LinearFlow/{ledger['linear']}/start/1")
        assert len(page) < 100_000 and "line 019999" in page and "line 000000" not in page
        assert f"of {len(lines):,} bytes" in page
        earlier = re.search(r'href="(/log/\d+/stdout\?offset=\d+)">earlier output', page)
        assert earlier
        seen, next_page = [], earlier.group(1)
        while next_page:  # page back to the start
            status, html = get(url + next_page)
            assert status == 200
            seen += re.findall(r"line (\d{6})", html)
            back = re.search(r'href="(/log/\d+/stdout\?offset=\d+)">← earlier', html)
            next_page = back.group(1) if back else None
        assert "000000" in seen and "010000" in seen
        download = re.search(r'href="(/download/\d+/stdout)"', page)
        with urllib.request.urlopen(url + download.group(1)) as r:
            assert r.read().decode() == lines
        status, news = get(f"{url}/api/logs/{task_pk}?stdout={len(lines) - 28}&stderr=0")
        doc = json.loads(news)
        assert doc["stdout"]["text"] == "line 019999 of the long log\n"
        assert doc["stdout"]["end"] == len(lines) and doc["live"] is False
        assert doc["stderr"]["text"] == "warning from start\n"
    finally:
        server.shutdown()
        server.server_close()


def test_a_pickled_frames_preview_shows_its_shape_and_columns(tmp_path, ledger):
    db = tmp_path / "frame.db"
    shutil.copy(ledger["db"], db)
    conn = sqlite3.connect(db)  # what preview.py stores for a DataFrame, without its repr
    conn.execute("update blob set preview = 'pandas.core.frame.DataFrame shape=3x2 columns: "
                 "movie_title score' where sha in (select sha from artifact where name = 'when')")  # fmt: skip
    conn.commit()
    conn.close()
    server, url = _serve(db)
    try:
        _, html = get(f"{url}/artifact/LinearFlow/{ledger['linear']}/start/1/when")
        assert "<th>shape</th><td>3 × 2</td>" in html
        assert "<th>columns</th><td>movie_title, score</td>" in html
        assert "Load value (unpickles)" in html  # still not loaded
    finally:
        server.shutdown()
        server.server_close()
