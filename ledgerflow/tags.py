"""Tag validation, Metaflow's rules: non-empty UTF-8 strings of at most 500 characters, at
most 50 user tags per run; and `tag list --flat`'s listing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .exceptions import MetaflowTaggingError

# Metaflow's limits (metaflow/tagging_util.py).
MAX_TAG_SIZE = 500
MAX_USER_TAG_SET_SIZE = 50


def is_stringish(x: Any) -> bool:
    return isinstance(x, (str, bytes))


def validate_tag(tag: Any) -> str:
    """The tag as str, or MetaflowTaggingError: a non-empty UTF-8 string of at most 500
    characters."""
    if isinstance(tag, bytes):
        try:
            tag = tag.decode("utf-8")
        except UnicodeError:
            raise MetaflowTaggingError("Tags must be UTF-8 decodable") from None
    elif isinstance(tag, str):
        try:
            tag.encode("utf-8")
        except UnicodeError:
            raise MetaflowTaggingError(f"Tags must be UTF-8 encodable: {tag!r}") from None
    else:
        raise MetaflowTaggingError(f"Tags must be strings, got {type(tag).__name__}: {tag!r}")
    if not tag:
        raise MetaflowTaggingError("Tags must not be empty strings")
    if len(tag) > MAX_TAG_SIZE:
        raise MetaflowTaggingError(
            f"Tag is too long ({len(tag)} > {MAX_TAG_SIZE} characters): {tag[:40]!r}..."
        )
    return tag


def tag_list(tags: Any, what: str) -> list[str]:
    """Validated tags from an iterable (not a lone string)."""
    if is_stringish(tags):
        raise MetaflowTaggingError(f"{what} may not be a string; pass a list of tags")
    try:
        items = list(tags)
    except TypeError:
        raise MetaflowTaggingError(f"{what} must be an iterable of tags") from None
    return [validate_tag(t) for t in items]


def flat_tags(runs: Iterable[Any], hide_system_tags: bool = False) -> list[str]:
    """`tag list --flat`: every tag of the runs, once each, sorted (Metaflow prints the
    same union one per line, in set order); only user tags with `hide_system_tags`."""
    found: set[str] = set()
    for run in runs:
        found |= set(run.user_tags if hide_system_tags else run.tags)
    return sorted(found)
