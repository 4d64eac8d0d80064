"""The public surface is explicit: every name in __all__ resolves, and nothing more is promised."""

from __future__ import annotations

import ledgerflow


def test_every_name_in_all_resolves_and_is_not_shadowed_by_a_submodule():
    import importlib
    import pkgutil
    import types

    for info in pkgutil.walk_packages(ledgerflow.__path__, "ledgerflow."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)  # a submodule import must not shadow a name
    for name in ledgerflow.__all__:
        value = getattr(ledgerflow, name)
        assert value is not None and not isinstance(value, types.ModuleType), name


def test_all_is_exactly_the_public_names():
    """As httpx's tests/test_exported_members.py: every public name of the package is in
    __all__, once, and nothing else is (names loaded on first use count as public)."""
    import types

    defined = {
        name
        for name, value in vars(ledgerflow).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public = defined | set(ledgerflow._LAZY) | {"__version__"}
    assert len(ledgerflow.__all__) == len(set(ledgerflow.__all__))
    assert set(ledgerflow.__all__) == public


def test_metaflow_names_a_ported_flow_imports():
    from ledgerflow import (  # noqa: F401
        DataArtifact,
        Flow,
        FlowSpec,
        IncludeFile,
        JSONType,
        Metaflow,
        MetaflowException,
        MetaflowNotFound,
        MissingInMergeArtifactsException,
        Parameter,
        Run,
        Step,
        Task,
        UnhandledInMergeArtifactsException,
        catch,
        current,
        default_namespace,
        get_metadata,
        get_namespace,
        metadata,
        namespace,
        resources,
        retry,
        step,
        timeout,
    )  # fmt: skip


def test_unknown_names_raise_attribute_error():
    try:
        ledgerflow.NoSuchThing  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_not_found_is_a_key_error_and_invalid_pathspec_a_value_error():
    assert issubclass(ledgerflow.MetaflowNotFound, KeyError)
    assert issubclass(ledgerflow.MetaflowInvalidPathspec, ValueError)
    assert issubclass(
        ledgerflow.UnhandledInMergeArtifactsException, ledgerflow.MergeArtifactsException
    )


def test_a_missing_ledger_is_not_found_for_the_client(tmp_path):
    from ledgerflow import Flow, MetaflowNotFound
    from ledgerflow.exceptions import LedgerError

    missing = tmp_path / "nothing.db"
    for error in (MetaflowNotFound, LedgerError, KeyError):
        try:
            Flow("AnyFlow", ledger=missing)
        except error as e:
            assert "no ledger at" in str(e)
        else:
            raise AssertionError("expected an error")
    assert not missing.exists()
