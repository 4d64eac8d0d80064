"""One exception tree, drawn in exceptions.py's docstring, and one error handler for both
command lines (httpx's rule: the tree in the docstring, a one-line docstring per class)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap

import pytest

import ledgerflow
from ledgerflow import exceptions
from ledgerflow.runner import RunnerFailed


def _error_classes() -> dict[str, type[BaseException]]:
    # By class name: Metaflow's alias names (MetaflowException) are the same classes.
    found = {value.__name__: value for value in vars(exceptions).values()
             if isinstance(value, type) and issubclass(value, BaseException)
             and value.__module__ == exceptions.__name__}  # fmt: skip
    found["RunnerFailed"] = RunnerFailed  # lives in runner.py (it needs subprocess)
    from ledgerflow.cards.exception import CardNotPresentException  # Metaflow's module path

    found["CardNotPresentException"] = CardNotPresentException
    return found


def _drawn_tree() -> dict[str, str | None]:
    """{class name: parent's name} as the docstring draws it."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in exceptions.__doc__.splitlines():
        m = re.match(r"^( *)((?:[│ ] {3})*)(?:[├└]── )?([A-Z]\w+)(?= |$)", line)
        if not m or not ("──" in line or line.strip().startswith("LedgerflowError")):
            continue
        depth = len(m.group(2)) // 4 + (1 if "──" in line else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[m.group(3)] = stack[-1][1] if stack else None
        stack.append((depth, m.group(3)))
    return parents


def test_every_error_class_is_drawn_in_the_tree_under_its_base():
    tree = _drawn_tree()
    classes = _error_classes()
    outside = {"RunTerminated", "MetaflowExceptionWrapper"}  # named below the tree
    for name, cls in classes.items():
        if name in outside:
            assert name in exceptions.__doc__.split("The tree::")[1], name
            continue
        assert name in tree, f"{name} is missing from the tree in exceptions.py's docstring"
        parent = tree[name]
        if parent is not None:
            assert issubclass(cls, classes[parent]), f"{name} is drawn under {parent}"
    assert set(tree) <= set(classes), set(tree) - set(classes)


def test_every_error_class_has_a_one_line_docstring():
    for name, cls in _error_classes().items():
        doc = cls.__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), f"{name}: {doc!r}"


def test_metaflow_aliases_are_the_same_classes():
    assert exceptions.MetaflowException is exceptions.LedgerflowError
    assert ledgerflow.MetaflowException is exceptions.LedgerflowError


def test_no_headline_attributes_are_left():
    for name, cls in _error_classes().items():
        assert "headline" not in vars(cls), name


def test_errors_carry_an_exit_code_and_show_themselves_in_one_line():
    from ledgerflow.fulltext import SearchError
    from ledgerflow.query import QueryTimeout, SQLError

    for cls in (SQLError, QueryTimeout, SearchError):
        assert issubclass(cls, exceptions.LedgerflowError) and cls.__module__ == exceptions.__name__
    err = SQLError("no such table: nope")
    out = io.StringIO()
    err.show(file=out)
    assert out.getvalue() == "Error: no such table: nope\n"
    assert err.exit_code == 1 and err.format_message() == "no such table: nope"


_CLI_RAISING = """
import ledgerflow.query
from ledgerflow.cli.main import main

def fail(*args, **kwargs):
    raise {error}

ledgerflow.query.sql = fail
main()
"""


@pytest.mark.parametrize("error, code, line", [
    ("KeyboardInterrupt()", 130, "Interrupted."),
    ("__import__('ledgerflow.exceptions').exceptions.RunTerminated('x')", 143, "Terminated."),
    # An interrupt's exit code and line are its class's, as an error's are.
    ("type('I', (KeyboardInterrupt,), {'exit_code': 9, 'message': 'Stopped.'})()", 9,
     "Stopped."),
    ("__import__('ledgerflow.exceptions').exceptions.SQLError('bad query')", 1,
     "Error: bad query"),
    ("type('E', (__import__('ledgerflow.exceptions').exceptions.LedgerflowError,), "
     "{'exit_code': 7})('seven')", 7, "Error: seven"),
    ("RuntimeError('boom')", 1, "Internal error: RuntimeError: boom"),
])  # fmt: skip
def test_the_ledgerflow_command_uses_the_one_handler(tmp_path, error, code, line):
    """Ctrl-C (130) and SIGTERM (143) are mapped by the `ledgerflow` command as by the flow
    command; an error's own exit_code is used."""
    db = tmp_path / "l.db"
    db.write_bytes(b"")  # the command checks that the ledger exists before it queries
    script = textwrap.dedent(_CLI_RAISING.format(error=error))
    proc = subprocess.run([sys.executable, "-c", script, "--db", str(db), "sql", "select 1"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(line), proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_error_class_is_defined_outside_exceptions_py():
    """Errors live in the one tree; the exceptions allowed elsewhere say why."""
    import importlib
    import pkgutil

    allowed = {
        "ledgerflow.runner.RunnerFailed",  # drawn in the tree; here to keep subprocess lazy
        # drawn in the tree; at Metaflow's module path (metaflow.plugins.cards.exception)
        "ledgerflow.cards.exception.CardNotPresentException",
        "ledgerflow.task._TimedOut",  # private: how @timeout interrupts a step, never seen
        "ledgerflow.cli.common.UsageError",  # click's own tree (exit 2), for the CLI's edge
        "ledgerflow.cli.common.BadParameter",
    }
    found = set()
    for info in pkgutil.walk_packages(ledgerflow.__path__, "ledgerflow."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and not issubclass(value, Warning)
                and value.__module__ == module.__name__ != exceptions.__name__
            ):
                found.add(f"{module.__name__}.{value.__qualname__}")
    assert found == allowed
