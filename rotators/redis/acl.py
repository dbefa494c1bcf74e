"""Redis ACL password rules, as pure functions (tested without a server).

Passwords travel as their SHA-256 (``#<hash>`` adds one, ``!<hash>`` removes one): the
form Redis stores and ``ACL GETUSER`` shows, so a password never appears in a command
the server could echo (``MONITOR``, ``SLOWLOG``, ``ACL LOG``) and the current set can be
compared with what is wanted without logging in. No other rule is ever produced: a
user's commands, key and channel patterns and selectors are left as they are, and
neither ``nopass`` nor ``resetpass`` is sent (each would drop the current password).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


def password_hash(password: str) -> str:
    """How Redis stores a password: SHA-256 of its UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(password.encode()).hexdigest()


def password_rules(held: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """``ACL SETUSER`` rules that leave a user holding exactly the ``wanted`` passwords,
    given the hashes it ``held``: additions first, so that in the one atomic command no
    wanted password is ever missing. Empty when nothing needs to change."""
    held_hashes = [value.lower() for value in held]
    wanted_hashes = list(dict.fromkeys(password_hash(password) for password in wanted))
    adds = [f"#{value}" for value in wanted_hashes if value not in held_hashes]
    removes = [f"!{value}" for value in held_hashes if value not in wanted_hashes]
    return adds + removes
