"""One table printer for every command (cli/common.py echo_table): `ledgerflow sql` prints
through it too, so what a ledger holds cannot drive the terminal there either."""

from __future__ import annotations

from click.testing import CliRunner

from ledgerflow.cli.main import cli

from .helpers import FLOWS, run_flow


def test_sql_table_shows_null_bytes_and_escapes_control_characters(db_path):
    run_flow(FLOWS / "plain" / "params_flow.py", db=db_path)
    query = (
        "select 'a' || char(27) || '[31m' as esc, null as empty, x'0102' as raw, "
        "'line1' || char(10) || 'line2' as two, printf('%070d', 0) as wide"
    )
    result = CliRunner().invoke(cli, ["--db", str(db_path), "sql", query],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    header, row, count = result.output.splitlines()
    assert header.split() == ["esc", "empty", "raw", "two", "wide"]
    assert "\x1b" not in result.output and "a\\x1b[31m" in row
    assert "NULL" in row and "<2 bytes>" in row and "line1 line2" in row
    assert "0" * 57 + "..." in row
    assert count == "(1 row)"


def test_other_tables_keep_capital_headers_and_blank_nones(db_path):
    run_flow(FLOWS / "plain" / "params_flow.py", db=db_path)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "runs"], catch_exceptions=False)
    header = result.output.splitlines()[0]
    assert header == header.upper() and "FLOW" in header
