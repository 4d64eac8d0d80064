"""Fuzzing the parsers a user's text reaches: pathspecs and search queries. Whatever the
input, the only errors are ledgerflow's documented ones, never a crash or an SQLite error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerflow import DataArtifact, Flow, Run, Step, Task, namespace
from ledgerflow.exceptions import (
    LedgerflowError,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)
from ledgerflow.fulltext import SearchError, fts_query, search

from .helpers import EXAMPLES, run_flow

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
pathish = st.lists(
    st.sampled_from(
        ["ArtifactExample", "start", "end", "1", "2", "", " ", "x", "..", "*", "'", '"', "%", "é"]
    ),
    max_size=6,
).map("/".join)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "ledgerflow.db"
    run_flow(EXAMPLES / "artifact_example.py", db=db)
    return db


@given(spec=st.one_of(text, pathish))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_pathspecs_only_raise_documented_errors(ledger, spec):
    namespace(None)
    for cls in (Flow, Run, Step, Task, DataArtifact):
        try:
            cls(spec, ledger=ledger)
        except (MetaflowInvalidPathspec, MetaflowNotFound, MetaflowNamespaceMismatch) as e:
            assert str(e) and "Traceback" not in str(e)


@given(query=text)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_search_queries_only_raise_search_errors(ledger, query):
    try:
        hits = search(query, ledger=ledger, limit=5)
    except SearchError as e:
        assert str(e)
    else:
        assert len(hits) <= 5


@given(
    words=st.lists(
        st.text(alphabet="abcxyz-_.:'0123456789", min_size=1, max_size=8), min_size=1, max_size=4
    )
)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_plain_words_are_always_a_valid_query(ledger, words):
    """Text without FTS syntax is quoted for the user, so it never fails to parse."""
    query = " ".join(words)
    if fts_query(query) != query:  # it was quoted: plain words
        search(query, ledger=ledger)


def test_errors_share_one_base():
    assert issubclass(SearchError, LedgerflowError)
