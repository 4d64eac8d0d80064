"""A warning when an artifact looks like a credential (never blocks the run), and the rule
that keeps suspected credentials out of the full-text search index.

The artifact reference says: "Don't store credentials: never store passwords, API keys, or
other secrets as artifacts. Use environment variables or secret management systems instead."

What counts as suspect: a name like a credential (`password`, `api_key`, `awsSecretAccessKey`,
`db_token`), or a value holding one — anywhere in a string, or in a dict/list's keys and
string leaves, scanning up to SCAN_CHARS characters (not just the preview): AWS key ids, private
keys, GitHub/Slack/OpenAI-style tokens, JWTs, URLs with a password (`postgresql://u:pw@host`),
and dict keys that are credential names (`{"password": ...}`), and the process environment
itself (`dict(os.environ)`, `os.environ`: told by the variables every environment has —
PATH, HOME, SHELL, ... — since it holds whatever secrets the environment holds, whether or
not one is named like a credential today). A JWT is caught whatever its signature's length
(an unsigned one, `alg: none`, is a bearer credential too).
"""

from __future__ import annotations

import re
from typing import Any

# Characters of a value's text scanned, in all: past the 2,000 of a preview, within a cost a
# task never notices (binary values, bytes, are not scanned: keys are text).
SCAN_CHARS = 64 * 1024
_SCAN_ITEMS = 10_000  # container items looked at, in all

# Words that name a credential, matched on a name split at '_', '-', '.', and camelCase.
_WORDS = re.compile(
    r"(^|_)(password|passwd|pwd|passphrase|secret|api_?key|apikey|access_?key|secret_?key|"
    r"token|auth_?token|access_?token|refresh_?token|private_?key|credentials?|"
    r"client_?secret|secret_?access_?key|session_?token)$",
    re.IGNORECASE,
)
_VALUE = [
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), "a GitHub token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "an API secret key"),
    (re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"), "a Slack token"),
    # header.payload.signature, both JSON objects in base64url ("eyJ" is '{"'); the signature
    # may be short (truncated, a test key) or empty (alg none): still a bearer credential.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), "a JWT"),
    (
        re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]+:[^\s/@]+@[^\s]"),
        "a URL with a password in it",
    ),
]


# Variables (nearly) every process environment has: a dict holding several of them as keys
# is a copy of the environment. Counted on keys, or on quoted keys in a preview's text.
_ENVIRONMENT_KEYS = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "LANG", "TERM", "HOSTNAME",
    "TMPDIR", "SHLVL", "LC_ALL", "LC_CTYPE", "VIRTUAL_ENV", "PYTHONPATH", "MAIL", "EDITOR",
})  # fmt: skip
_ENVIRONMENT_MIN = 3
_ENVIRONMENT_TEXT = re.compile(r"(?<![\w$])(" + "|".join(sorted(_ENVIRONMENT_KEYS)) + r")(?!\w)")
_ENVIRONMENT = "its value looks like the process environment (dict(os.environ)), which holds "\
    "every secret the environment does"  # fmt: skip


def _environment_like(value: Any) -> bool:
    """os.environ itself, or a mapping with several of every environment's variables."""
    import os

    if isinstance(value, type(os.environ)):
        return True
    try:
        keys = [k for k in list(value.keys())[:_SCAN_ITEMS] if isinstance(k, str)]
    except Exception:  # noqa: BLE001 - a check must never fail a task
        return False
    return len(_ENVIRONMENT_KEYS.intersection(keys)) >= _ENVIRONMENT_MIN


def _environment_text(text: str) -> bool:
    """A preview of such a mapping ('SHELL /bin/bash PWD /home/me HOME ...'): several of
    those variables' names as words (for the search index, which sees only previews)."""
    return len(set(_ENVIRONMENT_TEXT.findall(text[:SCAN_CHARS]))) >= _ENVIRONMENT_MIN


_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SEPARATORS = re.compile(r"[-.\s]+")


def _snake(name: str) -> str:
    """'awsSecretAccessKey' -> 'aws_secret_access_key'; 'DB-Password' -> 'db_password'."""
    return _SEPARATORS.sub("_", _CAMEL.sub(r"\1_\2", name)).lower()


def name_suggests_credential(name: str) -> bool:
    """'password', 'db_password', 'awsSecretAccessKey', 'AWS_SECRET_ACCESS_KEY' (not
    'token_count')."""
    if name in ("PWD", "OLDPWD"):  # the shell's working directories, not passwords
        return False
    return bool(_WORDS.search(_snake(name)))


def suspected_secret(name: str, value: Any) -> str | None:
    """Why this artifact looks like a credential ('its name suggests ...'), or None."""
    if name_suggests_credential(name) and isinstance(value, (str, bytes, dict)) and value:
        return "its name suggests a credential"
    return _scan(value)


def _scan(value: Any) -> str | None:
    budget = [SCAN_CHARS, _SCAN_ITEMS]
    found: list[str] = []

    def text(s: str) -> None:
        if budget[0] <= 0 or found:
            return
        piece = s[: budget[0]]
        budget[0] -= len(piece)
        for pattern, what in _VALUE:
            if pattern.search(piece):
                found.append(f"its value looks like {what}")
                return

    def walk(v: Any, depth: int) -> None:
        if found or depth > 8 or budget[0] <= 0 or budget[1] <= 0:
            return
        budget[1] -= 1
        if isinstance(v, str):
            text(v)
        elif isinstance(v, dict) or _is_environ(v):
            if _environment_like(v):
                found.append(_ENVIRONMENT)
                return
            for k, item in v.items():
                if isinstance(k, str) and name_suggests_credential(k) and item:
                    found.append(f"its key '{k}' names a credential")
                    return
                walk(k, depth + 1)
                walk(item, depth + 1)
        elif isinstance(v, (list, tuple, set, frozenset)):
            for item in v:
                walk(item, depth + 1)

    try:
        walk(value, 0)
    except Exception:  # noqa: BLE001 - a check must never fail a task
        return None
    return found[0] if found else None


def _is_environ(value: Any) -> bool:
    import os

    return isinstance(value, type(os.environ))


_NUMBERS = (bool, int, float)


def credential_warning(step: str, name: str, value: Any, preview: str) -> str | None:
    """The warning to print for this artifact, or None."""
    if value is None or type(value) in _NUMBERS:
        return None  # its name counts only for text values, and no pattern matches a number
    reason = suspected_secret(name, value) or _scan(preview)
    if reason is None:
        return None
    return (
        f"Warning: artifact '{name}' of step '{step}' is stored in the ledger, and {reason}. "
        "Don't store credentials as artifacts: read them from environment variables or a "
        f"secret manager, or keep them private (self._{name}) so they are never stored."
    )


def index_text(name: str, preview: str) -> str:
    """What the full-text index may hold for an artifact: its preview, or nothing when the
    name or the preview suggests a credential (so `search` never finds one). A dict's keys
    are in its preview: `dict(os.environ)` is caught by its keys (PATH, HOME, ...)."""
    if name_suggests_credential(name) or _scan(preview) is not None or _environment_text(preview):
        return ""
    for word in re.findall(r"[A-Za-z][A-Za-z0-9_]{3,}", preview):
        keylike = (
            "_" in word
            or re.search(r"[a-z][A-Z]", word)
            or word.lower() in ("password", "passwd", "passphrase")
        )
        if keylike and name_suggests_credential(word):
            return ""
    return preview
