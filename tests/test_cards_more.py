"""Cards, round 3 (issue 27 items 10-11, issue 31 item 2, issue 30 items 5-6): several @card
per step without ids, custom MetaflowCard types, CardNotPresentException, and card HTML
shown only inside a sandbox. The browser checks are in test_card_sandbox.py."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from ledgerflow import Run, namespace
from ledgerflow.cards import CardNotPresentException, MetaflowCard, get_cards, register_card
from ledgerflow.exceptions import LedgerflowError, MetaflowNotFound

from .helpers import FLOWS, run_flow

MULTI = FLOWS / "cards" / "multi_card_flow.py"
CUSTOM = FLOWS / "cards" / "custom_card_flow.py"
SCRIPT = FLOWS / "cards" / "script_card_flow.py"
LINEAR = FLOWS / "client" / "linear_flow.py"


def _task(db: Path, flow: str, run_id: str, step: str):
    namespace(None)
    return Run(f"{flow}/{run_id}", ledger=db)[step].task


def _run(flow_file: Path, db: Path, *args: str) -> tuple[str, str]:
    proc = run_flow(flow_file, *args, db=db)
    return proc.stdout.strip().splitlines()[-1], proc.stderr


# -- several cards on one step (issue 27 item 10) -------------------------------------------


def test_several_cards_per_step_without_ids_as_metaflow(db_path):
    """Metaflow 2.19.39 runs multi_card_flow.py (import switched) and get_cards gives
    start: [(default, None), (default, None)], middle: [(default, None), (blank, 'x')],
    end: [(default, 'd'), (blank, 'd')], warning on end's stderr about the shared id."""
    run_id, _ = _run(MULTI, db_path)
    kinds = {
        step: [(c.type, c.id) for c in get_cards(_task(db_path, "MultiCardFlow", run_id, step))]
        for step in ("start", "middle", "end")
    }
    assert kinds == {
        "start": [("default", None), ("default", None)],
        "middle": [("default", None), ("blank", "x")],
        "end": [("default", "d"), ("blank", "d")],
    }
    middle = get_cards(_task(db_path, "MultiCardFlow", run_id, "middle"))
    # current.card.append goes to the only card without an id; current.card['x'] to blank.
    assert "to the default card" in middle[0].get() and "to the blank card" not in middle[0].get()
    assert "to the blank card" in middle[1].get()
    end = _task(db_path, "MultiCardFlow", run_id, "end")
    assert (
        "[@card WARNING] Multiple `@card` decorator have been annotated with duplicate ids : d. "
        "`current.card['d']` will not work" in end.stderr
    )


def test_card_get_chooses_among_several_cards(db_path):
    run_id, _ = _run(MULTI, db_path)

    def card(*args: str, check: int = 0):
        return run_flow(MULTI, *args, db=db_path, command="card", top=(), check=check)

    assert "to the blank card" in card("get", "middle", "--id", "x").stdout
    assert "to the default card" in card("get", "middle", "--type", "default").stdout
    # Two cards of one task: the error names the options that tell them apart, not a
    # pathspec (the task is already one).
    both = card("get", "middle", check=2)
    last = both.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: 2 cards match (MultiCardFlow/") and last.endswith(
        "choose one with --id, --type or --hash"
    ), last
    assert "RUN_ID/STEP/TASK_ID" not in last
    same_id = card("get", "end", check=2).stderr.strip().splitlines()[-1]
    assert same_id.endswith("choose one with --type or --hash"), same_id
    assert card("get", "end", "--type", "blank").stdout.startswith("<!DOCTYPE html>")
    # Two identical cards (bare @card twice): either one is the answer.
    assert card("get", "start").stdout.startswith("<!DOCTYPE html>")
    assert card("view", "nosuchstep", check=1).returncode == 1


# -- custom card types (issue 27 item 11) ---------------------------------------------------


@pytest.mark.parametrize("executor", ["process", "spawn", "thread"])
def test_custom_card_type_is_rendered_stored_and_shown(db_path, executor):
    run_id, stderr = _run(CUSTOM, db_path, "--executor", executor)
    start = get_cards(_task(db_path, "CustomCardFlow", run_id, "start"))
    (report,) = start
    page = report.get()
    assert report.type == "report_card" and report.error is None
    assert "<h1>Weekly report</h1>" in page and "accuracy=0.93" in page and "note=kept" in page
    assert f"at CustomCardFlow/{run_id}/start/1 step start" in page
    assert "steps ['end', 'start']" in page  # the graph it was given
    assert "<strong>appended</strong>" in page  # ALLOW_USER_COMPONENTS: it took the append
    end = get_cards(_task(db_path, "CustomCardFlow", run_id, "end"))
    assert [c.type for c in end] == ["report_card", "not_registered"]
    assert "accuracy=0.93" in end[0].get() and "note=changed" in end[0].get()  # inherited, set
    assert end[1].error.startswith(
        "no card type 'not_registered'; the types known here are blank, default, report_card "
        "(register a MetaflowCard subclass with ledgerflow.cards.register_card)"
    )
    assert "failed to render: no card type 'not_registered'" in stderr
    # Shown like the built-in ones: the flow CLI prints it.
    out = run_flow(CUSTOM, "get", f"{run_id}/start/1", db=db_path, command="card", top=())
    assert out.stdout == page


def test_register_card_refuses_what_cannot_be_a_card_type():
    class NoType(MetaflowCard):
        def render(self, task):
            return ""

    class Default(MetaflowCard):
        type = "default"

    with pytest.raises(LedgerflowError, match="has no type name; set type = 'my_card'"):
        register_card(NoType)
    with pytest.raises(LedgerflowError, match="card type 'default' is built in"):
        register_card(Default)
    with pytest.raises(LedgerflowError, match="needs a MetaflowCard subclass"):
        register_card("report")  # type: ignore[arg-type]

    class First(MetaflowCard):
        type = "test_clash_card"

    class Second(MetaflowCard):
        type = "test_clash_card"

    assert register_card(First) is First and register_card(First) is First
    with pytest.raises(LedgerflowError, match="registered already by .*First"):
        register_card(Second)


def test_metaflow_import_paths_for_card_names():
    from ledgerflow.plugins.cards.card_modules.card import MetaflowCard as FromPlugins
    from ledgerflow.plugins.cards.exception import CardNotPresentException as FromExceptionModule

    assert FromPlugins is MetaflowCard and FromExceptionModule is CardNotPresentException


# -- get_cards on a task without cards (issue 31 item 2) ------------------------------------


def test_get_cards_on_a_task_without_cards_raises_metaflows_exception(db_path):
    """Metaflow 2.19.39: `get_cards(task)` for a task with no @card raises
    CardNotPresentException('Card not found for pathspec F/R/S/T'), a MetaflowException."""
    run_id, _ = _run(LINEAR, db_path)
    task = _task(db_path, "LinearFlow", run_id, "start")
    with pytest.raises(CardNotPresentException) as caught:
        get_cards(task)
    assert str(caught.value) == f"Card not found for pathspec {task.pathspec}"
    assert isinstance(caught.value, MetaflowNotFound)
    with pytest.raises(CardNotPresentException, match="Card with type 'blank' not found for"):
        get_cards(task.pathspec, type="blank")


def test_get_cards_filters_that_match_nothing_give_an_empty_container(db_path):
    run_id, _ = _run(MULTI, db_path)
    task = _task(db_path, "MultiCardFlow", run_id, "middle")
    assert len(get_cards(task, id="nope")) == 0  # as Metaflow: the task has cards


# -- card HTML in notebooks and `card view` (issue 30 items 5-6) ----------------------------


def test_notebook_repr_escapes_and_sandboxes(db_path):
    run_id, _ = _run(SCRIPT, db_path)
    cards = get_cards(_task(db_path, "ScriptCardFlow", run_id, "start"))
    shown = cards._repr_html_()
    frames = re.findall(r"<iframe[^>]*>", shown)
    assert frames and all(' sandbox=""' in f for f in frames)
    assert "allow-scripts" not in shown and "allow-same-origin" not in shown
    # The id is escaped where it is printed; the card's markup only exists inside srcdoc.
    assert "<script" not in shown.split("srcdoc=")[0]
    evil_id = cards[0].id
    assert html.escape(evil_id) in shown and evil_id not in shown
    assert re.sub(r'srcdoc="[^"]*"', "", shown).count("<script") == 0


def test_card_view_writes_a_page_under_a_no_script_policy(db_path, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    run_id, _ = _run(SCRIPT, db_path)
    (card,) = get_cards(_task(db_path, "ScriptCardFlow", run_id, "start"))
    path = card.view()
    page = Path(path).read_text()
    assert opened == [f"file://{path}"]
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert re.sub(r'srcdoc="[^"]*"', "", page).count("<script") == 0
    assert '<iframe sandbox=""' in page


def test_the_default_card_shows_times_as_the_other_screens_do():
    """Issue 28 item 6: local time with its UTC offset, not the stored ISO text."""
    from ledgerflow.cards.render import default_card
    from ledgerflow.clock import screen_time

    stored = "2026-12-06T00:31:07.854365Z"
    html = default_card({"pathspec": "F/1/start/1", "status": "succeeded", "attempt": 0,
                         "started_at": stored, "finished_at": "not a time",
                         "parameters": [], "artifacts": []}, [])  # fmt: skip
    assert screen_time(stored) in html and stored not in html
    assert "not a time" in html  # a damaged value is shown as it is
