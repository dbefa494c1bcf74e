"""The registry of secret values that must never be printed, and the redactor.

Every password parsed or generated and every ``RotationToken`` received is registered
here; the log formatter then replaces any registered value in a finished log line,
whatever path it took there (message, extra key, exception text). Error messages are
passed through :func:`redact` before they leave the function.
"""

from __future__ import annotations

import json
from collections import OrderedDict

MASK = "***"
_MAX_REMEMBERED = 256
# Values too short to be secrets would mask ordinary words.
_MIN_LENGTH = 6

_registered: OrderedDict[str, None] = OrderedDict()


def register(value: str | None) -> None:
    """Remember ``value`` as secret for the rest of the container's life (bounded)."""
    if not value or len(value) < _MIN_LENGTH:
        return
    _registered[value] = None
    _registered.move_to_end(value)
    while len(_registered) > _MAX_REMEMBERED:
        _registered.popitem(last=False)


def redact(text: str) -> str:
    """``text`` with every registered value, raw or JSON-escaped, replaced by ``***``."""
    if not _registered:
        return text
    for value in sorted(_registered, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
        escaped = json.dumps(value)[1:-1]
        if escaped != value and escaped in text:
            text = text.replace(escaped, MASK)
    return text
