"""Cards: @card, current.card, the components, storage in the ledger, get_cards and the flow
CLI's `card view|get|list`. Flows run through the real CLI; cards are read back through
get_cards and plain sqlite3."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow import Run, namespace
from ledgerflow.cards import (
    Artifact,
    CardNotPresentException,
    Image,
    Markdown,
    Table,
    VegaChart,
    get_cards,
)
from ledgerflow.cards.dag import dag_svg, layers
from ledgerflow.cards.markdown import markdown_to_html
from ledgerflow.cards.vega import vega_to_svg

from .helpers import FLOWS, query, run_flow

CARD_FLOW = FLOWS / "cards" / "card_flow.py"
LINEAR = FLOWS / "client" / "linear_flow.py"


def _run_id(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


def _cards(db: Path, pathspec: str, **kw):
    """get_cards of the one task of FLOW/RUN/STEP."""
    namespace(None)
    flow, run_id, step = pathspec.split("/")
    return get_cards(Run(f"{flow}/{run_id}", ledger=db)[step].task, **kw)


@pytest.fixture
def card_run(db_path: Path) -> str:
    return _run_id(run_flow(CARD_FLOW, db=db_path))


def test_cards_are_stored_with_their_tasks(db_path, card_run):
    rows = query(
        db_path,
        "select t.step, c.seq, c.type, c.card_id, c.sha is not null, c.error "
        "from card c join task t on t.id = c.task_id order by t.id, c.seq",
    )
    assert [r[:5] for r in rows] == [
        ("start", 0, "default", None, 1),
        ("two", 0, "default", "details", 1),
        ("two", 1, "blank", "summary", 1),
        ("end", 0, "nonexistent", None, 1),  # save_errors=True: an error page is stored
    ]
    assert rows[3][5].startswith("no card type 'nonexistent'")
    # The HTML is an ordinary blob: JSON-encoded text, never a pickle.
    encodings = query(
        db_path, "select distinct b.encoding from card c join blob b on b.sha = c.sha"
    )
    assert encodings == [("json",)]
    status = query(db_path, "select status from runs where run_id = ?", (card_run,))
    assert status == [("succeeded",)]  # a card that failed did not fail its task


def test_default_card_shows_components_task_and_artifacts(db_path, card_run):
    (card,) = _cards(db_path, f"CardFlow/{card_run}/start")
    html = card.get()
    assert card.type == "default" and card.id is None and len(card.hash) == 64
    assert "<h1>Training report</h1>" in html and "<strong>0.93</strong>" in html
    assert "<th>letter</th>" in html and "<td>y</td>" in html
    assert 'src="data:image/png;base64,' in html and "one pixel" in html
    assert "{&#x27;k&#x27;: [1, 2, 3]}" in html and "a dict" in html
    assert '<progress max="10" value="10">' in html
    assert 'class="lf-vega"' in html and "<rect" in html
    assert "caught it" in html and "ValueError(&#x27;bad thing&#x27;)" in html
    assert "BrokenComponent could not be rendered" in html  # the rest of the card survives
    assert "ledger &lt;b&gt;cards&lt;/b&gt;" in html  # artifact previews are escaped
    assert ">alpha<" in html and ">0.5<" in html  # parameters
    assert 'class="lf-dag"' in html and html.count('class="lf-node"') == 3
    # Self-contained: no script, nothing fetched from anywhere.
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_cards_by_id_and_the_default_editable_card(db_path, card_run):
    cards = _cards(db_path, f"CardFlow/{card_run}/two")
    assert [(c.type, c.id) for c in cards] == [("default", "details"), ("blank", "summary")]
    (summary,) = _cards(db_path, f"CardFlow/{card_run}/two", id="summary")
    assert "Summary card" in summary.get() and "Task card" not in summary.get()
    (details,) = _cards(db_path, f"CardFlow/{card_run}/two", type="default")
    # customize=True makes @card(id="details") the one current.card.append reaches.
    assert "details text" in details.get() and "customize=True makes it" in details.get()
    (broken,) = _cards(db_path, f"CardFlow/{card_run}/end")
    assert broken.error and "no card type" in broken.get()


def test_a_slow_card_and_unclaimed_components_never_fail_the_task(db_path):
    proc = run_flow(FLOWS / "cards" / "slow_and_unclaimed.py", db=db_path)
    run_id = _run_id(proc)
    rows = query(db_path, "select c.error from card c")
    assert len(rows) == 1 and "longer than the card's timeout (0.2 seconds)" in rows[0][0]
    stderr = query(
        db_path,
        "select log_text(l.task_id, l.stream) from log l join task t on t.id = l.task_id "
        "where l.stream = 'stderr' order by t.id",
    )
    assert "current.card['nobody'] has no @card(id='nobody')" in stderr[0][0]
    assert "appended to current.card but has no @card" in stderr[1][0]
    assert query(db_path, "select status from runs where run_id = ?", (run_id,)) == [("succeeded",)]


def test_with_card_adds_the_default_card_to_every_step(db_path):
    run_id = _run_id(run_flow(LINEAR, "--with", "card", db=db_path))
    rows = query(
        db_path, "select t.step, c.type from card c join task t on t.id = c.task_id order by t.id"
    )
    assert rows == [("start", "default"), ("middle", "default"), ("end", "default")]
    (card,) = _cards(db_path, f"LinearFlow/{run_id}/end")
    assert ">result<" in card.get() and "builtins.int" in card.get()


def test_cards_with_the_process_executor(db_path):
    run_flow(CARD_FLOW, "--executor", "process", db=db_path)
    assert query(db_path, "select count(*) from card where error is null") == [(3,)]


def test_card_cli_list_get_view(db_path, card_run, tmp_path):
    listing = run_flow(CARD_FLOW, "--help", db=db_path, command="card", top=()).stdout
    assert "view" in listing and "get" in listing and "list" in listing
    out = run_flow(CARD_FLOW, "list", card_run, db=db_path, command="card", top=()).stdout
    assert "summary" in out and "nonexistent" in out and out.count(f"CardFlow/{card_run}/") == 4
    html = run_flow(CARD_FLOW, "get", "start", db=db_path, command="card", top=()).stdout
    assert html.startswith("<!DOCTYPE html>") and "Training report" in html
    target = tmp_path / "summary.html"
    run_flow(
        CARD_FLOW,
        "get",
        f"{card_run}/two/2",
        str(target),
        "--id",
        "summary",
        db=db_path,
        command="card",
        top=(),
    )
    assert "Summary card" in target.read_text()
    ambiguous = run_flow(
        CARD_FLOW, "get", f"{card_run}/two", db=db_path, command="card", top=(), check=2
    )
    assert "2 cards match" in ambiguous.stderr and "--id" in ambiguous.stderr
    assert len(ambiguous.stderr.strip().splitlines()) == 1
    missing = run_flow(
        CARD_FLOW, "get", "start", "--id", "nope", db=db_path, command="card", top=(), check=1
    )
    assert "no card matches" in missing.stderr and "Traceback" not in missing.stderr
    env = {**os.environ, "BROWSER": "true"}  # webbrowser runs `true URL`: opens nothing
    proc = subprocess.run(
        [sys.executable, str(CARD_FLOW), "--db", str(db_path), "card", "view", "start"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    written = Path(proc.stdout.strip().splitlines()[-1])
    assert "Training report" in written.read_text()


def test_card_list_as_json(db_path, card_run):
    import json

    out = run_flow(
        CARD_FLOW, "list", f"{card_run}/two", "--as-json", db=db_path, command="card", top=()
    ).stdout
    assert [(c["type"], c["id"]) for c in json.loads(out)] == [
        ("default", "details"),
        ("blank", "summary"),
    ]


def test_cards_travel_with_export_survive_gc_and_go_with_rm(db_path, card_run, tmp_path):
    from click.testing import CliRunner

    from ledgerflow.cli.main import cli

    exported = tmp_path / "shared.db"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--db", str(db_path), "export", f"CardFlow/{card_run}", "--to", str(exported)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert query(exported, "select count(*) from card") == [(4,)]
    (card,) = _cards(exported, f"CardFlow/{card_run}/start")
    assert "Training report" in card.get()
    assert runner.invoke(cli, ["--db", str(db_path), "gc"]).exit_code == 0
    (card,) = _cards(db_path, f"CardFlow/{card_run}/start")
    assert "Training report" in card.get()  # gc kept the card's blob
    result = runner.invoke(cli, ["--db", str(db_path), "rm", f"CardFlow/{card_run}", "--yes"])
    assert result.exit_code == 0, result.output
    assert query(db_path, "select count(*) from card") == [(0,)]
    runner.invoke(cli, ["--db", str(db_path), "gc"])
    assert query(db_path, "select count(*) from blob") == [(0,)]


def test_get_cards_follows_a_resumed_task_to_its_origin(db_path, tmp_path):
    ids = tmp_path / "run-id"
    run_flow(
        LINEAR, "--with", "card", "--fail", "true", "--run-id-file", str(ids), db=db_path, check=1
    )
    first = ids.read_text().strip()
    run_flow(
        LINEAR,
        "--origin-run-id",
        first,
        "--with",
        "card",
        "--run-id-file",
        str(ids),
        db=db_path,
        command="resume",
        check=1,
    )  # fails again (same parameters)
    second = ids.read_text().strip()
    assert second != first
    # `start` was cloned, not run: it has no card of its own and shows its origin's.
    (card,) = _cards(db_path, f"LinearFlow/{second}/start")
    assert card.from_resumed and card.origin_pathspec == f"LinearFlow/{first}/start/1"
    assert f"LinearFlow/{first}/start/1" in card.get()
    # Without following, the clone has no card of its own: Metaflow's exception.
    with pytest.raises(CardNotPresentException, match=f"for pathspec LinearFlow/{second}/start/1"):
        _cards(db_path, f"LinearFlow/{second}/start", follow_resumed=False)
    # The failed task has its card too, showing the failure.
    (failed,) = _cards(db_path, f"LinearFlow/{second}/middle")
    assert ">failed<" in failed.get()


def test_ledger_from_before_cards_is_upgraded(db_path):
    """A file at schema 1 gains the card table on first write access."""
    from ledgerflow.ledger import Ledger
    from ledgerflow.schema import SCHEMA_VERSION

    conn = sqlite3.connect(db_path)
    from ledgerflow.schema import MIGRATIONS

    MIGRATIONS[0](conn)
    conn.execute("pragma user_version = 1")
    conn.commit()
    conn.close()
    Ledger.open(db_path)
    assert query(db_path, "pragma user_version") == [(SCHEMA_VERSION,)]
    assert query(db_path, "select count(*) from card") == [(0,)]


# -- components and drawing, unit by unit ---------------------------------------------------


def test_markdown_escapes_html_and_keeps_its_formatting():
    html = markdown_to_html(
        "# Title <script>x</script>\n\n- **bold** and `a<b`\n- [l](https://e.x)"
        "\n\n```\n<i>code</i>\n```\n[bad](javascript:alert(1))"
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<h1>Title" in html and "<li><strong>bold</strong> and <code>a&lt;b</code></li>" in html
    assert '<a href="https://e.x">l</a>' in html and "&lt;i&gt;code&lt;/i&gt;" in html
    assert 'href="javascript' not in html


def test_markdown_component_dedents():
    assert (
        "<h2>Head</h2>"
        in Markdown("""
        ## Head
        text
    """).render()
    )


def test_table_image_artifact_edge_cases():
    assert "<td>&lt;b&gt;</td>" in Table([["<b>"]]).render()
    nested = Table([[Markdown("**x**")]], headers=["h"]).render()
    assert "<strong>x</strong>" in nested
    assert "could not be rendered" in Image(b"not an image").render()
    assert "could not be rendered" in Image.from_matplotlib(object()).render()
    long = Artifact(list(range(10_000))).render()
    assert "..." in long and len(long) < 2000
    assert "not supported" in Table.from_dataframe([1, 2]).render()


def test_vega_spec_without_inline_data_is_shown_as_json():
    spec = {
        "mark": "bar",
        "data": {"url": "https://example.com/x.json"},
        "encoding": {"x": {"field": "a"}, "y": {"field": "b"}},
    }
    assert vega_to_svg(spec) is None
    html = VegaChart(spec).render()
    assert "https://example.com/x.json" in html and "<pre>" in html  # shown, never fetched
    line = vega_to_svg(
        {
            "mark": {"type": "line"},
            "data": {"values": [{"a": 1, "b": 2}, {"a": 2, "b": 5}]},
            "encoding": {"x": {"field": "a"}, "y": {"field": "b"}},
        }
    )
    assert line is not None and "<polyline" in line


def test_dag_layers_with_a_loop_back():
    info = {"start_step": "start", "steps": {
        "start": {"next": ["a"]}, "a": {"next": ["b", "end"]}, "b": {"next": ["a"]},
        "end": {"next": []}}}  # fmt: skip
    assert layers(info) == [["start"], ["a"], ["end", "b"]] or layers(info) == [
        ["start"],
        ["a"],
        ["b", "end"],
    ]
    svg = dag_svg(info, {"a": "failed"})
    assert svg.count('class="lf-node"') == 4 and 'data-step="a" data-status="failed"' in svg
    assert "stroke-dasharray" in svg  # the loop back is drawn
