"""JSON bodies from outside (webhooks), parsed within bounds before anything is stored or read.

A valid signature says who sent a body, not that we can use it. `json.loads` accepts what
PostgreSQL cannot store (NUL in text, lone UTF-16 surrogates: "\\ud800") and raises
RecursionError, not ValueError, on a few thousand nested brackets. Each of those answered 500,
and a 500 makes the sender deliver the same body again for days.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deeper than any Stripe event or Replicate prediction we read (about ten levels).
MAX_DEPTH = 64

_SURROGATES = re.compile("[\ud800-\udfff]")
_SURROGATES_OR_NUL = re.compile("[\x00\ud800-\udfff]")


class UnusableJSON(ValueError):
    """Well-formed JSON that we refuse to store or act on; the message says why (no content)."""


def json_body_parse(body: str, *, nul_allowed: bool = False, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body, or ValueError: not JSON, nested deeper than `max_depth`, a lone
    surrogate anywhere, or (unless `nul_allowed`) a NUL in any string or key."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise UnusableJSON("nested too deeply") from None
    bad = _SURROGATES if nul_allowed else _SURROGATES_OR_NUL
    # Walked with a stack, not recursion: the depth check must not itself overflow.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if bad.search(item):
                raise UnusableJSON("a string with a NUL or a lone surrogate")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise UnusableJSON("nested too deeply")
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
    return value


def short_text(value: Any, *, max_length: int) -> str:
    """`value` if it is a non-empty string of at most `max_length` characters, else ValueError."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise UnusableJSON(f"expected a string of 1 to {max_length} characters")
    return value
