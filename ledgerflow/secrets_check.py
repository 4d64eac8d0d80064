"""A warning when an artifact looks like a credential. Never blocks the run.

The artifact reference says: "Don't store credentials: never store passwords, API keys, or
other secrets as artifacts. Use environment variables or secret management systems instead."
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(
    r"(^|_)(password|passwd|pwd|secret|api_?key|apikey|access_?key|secret_?key|token|"
    r"auth_?token|private_?key|credentials?)$",
    re.IGNORECASE,
)
_VALUE = [
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), "a GitHub token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "an API secret key"),
    (re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"), "a Slack token"),
]


def credential_warning(step: str, name: str, value: Any, preview: str) -> str | None:
    """The warning to print for this artifact, or None."""
    reason = None
    if _NAME.search(name) and isinstance(value, (str, bytes, dict)) and value:
        reason = "its name suggests a credential"
    else:
        for pattern, what in _VALUE:
            if pattern.search(preview):
                reason = f"its value looks like {what}"
                break
    if reason is None:
        return None
    return (
        f"Warning: artifact '{name}' of step '{step}' is stored in the ledger, and {reason}. "
        "Don't store credentials as artifacts: read them from environment variables or a "
        f"secret manager, or keep them private (self._{name}) so they are never stored."
    )
