"""The doctor's mask: no secret value reaches its output, in any field.

The command is installed alone with boto3 only, so it cannot use the functions' registry
(``common.redaction``); this is its small counterpart. Every value the doctor reads from
a secret that is a credential is registered (the ``password``, and the password of any
URL-shaped field such as a connection-string ``host``), and every printed line and the
``--json`` document are masked: registered values become ``***``, and the user-info part
of any URL (``scheme://user:password@host``) is shown as ``scheme://***@host``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
#: ``scheme://user-info@``: the user-info of a URL, which may hold a password.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s\"']*@")


def hide_url_credentials(text: str) -> str:
    """``text`` with every URL's user-info replaced: ``scheme://***@host/...``."""
    return URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}{MASK}@", text)


class Masker:
    """The values one run must never print, and the mask over what it prints."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def register(self, value: object) -> None:
        """Remember ``value`` (a non-empty string) and its JSON-escaped form as secret."""
        if isinstance(value, str) and value:
            self._values.update({value, json.dumps(value)[1:-1]})

    def register_secret(self, secret: dict[str, Any]) -> None:
        """Register a secret value's password and the credentials in any URL-shaped field."""
        self.register(secret.get("password"))
        for field in secret.values():
            if isinstance(field, str) and "://" in field:
                self._register_url(field)

    def _register_url(self, text: str) -> None:
        try:
            parts = urlsplit(text.strip())
        except ValueError:
            return
        if parts.password:
            self.register(parts.password)
            self.register(unquote(parts.password))

    def mask(self, text: str) -> str:
        """``text`` with URL user-info and every registered value (longest first) masked."""
        text = hide_url_credentials(text)
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text
