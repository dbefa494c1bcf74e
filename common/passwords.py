"""Password policy and generation.

Passwords are generated locally with ``secrets`` (a CSPRNG), so a rotation needs neither
a ``GetRandomPassword`` call nor its IAM permission. The policy honours the environment
variables AWS's sample functions read, so existing deployments keep their settings.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from common.errors import ConfigurationError, PasswordPolicyError

if TYPE_CHECKING:
    from collections.abc import Mapping

# GetRandomPassword's punctuation set, so policies port unchanged.
PUNCTUATION = string.punctuation
# AWS's sample functions exclude these by default: they break connection strings and shells.
DEFAULT_EXCLUDED = "/@\"'\\"

_BOOLEAN_VARIABLES = {
    "EXCLUDE_NUMBERS": "exclude_numbers",
    "EXCLUDE_PUNCTUATION": "exclude_punctuation",
    "EXCLUDE_UPPERCASE": "exclude_uppercase",
    "EXCLUDE_LOWERCASE": "exclude_lowercase",
    "REQUIRE_EACH_INCLUDED_TYPE": "require_each_included_type",
}


@dataclass(frozen=True)
class PasswordPolicy:
    """What a generated password may contain.

    An engine declares its own policy (``min_length``/``max_length`` and
    ``always_excluded`` are the server's hard limits); :meth:`with_environment` applies
    the deployment's overrides, which can narrow the policy but never break those limits.
    """

    length: int = 32
    exclude_characters: str = DEFAULT_EXCLUDED
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_uppercase: bool = False
    exclude_lowercase: bool = False
    require_each_included_type: bool = True
    min_length: int = 8
    max_length: int = 4096
    always_excluded: str = ""

    def with_environment(self, environ: Mapping[str, str]) -> PasswordPolicy:
        """This policy with ``PASSWORD_LENGTH``, ``EXCLUDE_*`` and ``REQUIRE_EACH_INCLUDED_TYPE``
        from ``environ`` applied; raises ConfigurationError naming a malformed variable."""
        changes: dict[str, object] = {}
        if "PASSWORD_LENGTH" in environ:
            try:
                changes["length"] = int(environ["PASSWORD_LENGTH"])
            except ValueError:
                raise ConfigurationError("PASSWORD_LENGTH must be an integer") from None
        if "EXCLUDE_CHARACTERS" in environ:
            changes["exclude_characters"] = environ["EXCLUDE_CHARACTERS"]
        for variable, attribute in _BOOLEAN_VARIABLES.items():
            if variable in environ:
                changes[attribute] = _boolean(variable, environ[variable])
        policy = replace(self, **changes)  # type: ignore[arg-type]
        policy.character_classes()  # fail at configuration time, not at generation time
        return policy

    def character_classes(self) -> list[str]:
        """The non-empty character classes a password draws from; raises PasswordPolicyError
        when the policy cannot produce a password."""
        if not self.min_length <= self.length <= self.max_length:
            raise PasswordPolicyError(
                f"PASSWORD_LENGTH {self.length} is outside this engine's limits "
                f"{self.min_length} to {self.max_length}"
            )
        excluded = set(self.exclude_characters) | set(self.always_excluded)
        wanted = [
            (self.exclude_lowercase, string.ascii_lowercase),
            (self.exclude_uppercase, string.ascii_uppercase),
            (self.exclude_numbers, string.digits),
            (self.exclude_punctuation, PUNCTUATION),
        ]
        classes = []
        for is_excluded, characters in wanted:
            if is_excluded:
                continue
            allowed = "".join(c for c in characters if c not in excluded)
            if allowed:
                classes.append(allowed)
        if not classes:
            raise PasswordPolicyError("the password policy excludes every character")
        if self.require_each_included_type and len(classes) > self.length:
            raise PasswordPolicyError(
                "PASSWORD_LENGTH is shorter than the number of required character types"
            )
        return classes

    def generate(self) -> str:
        """A new random password that satisfies the policy."""
        classes = self.character_classes()
        alphabet = "".join(classes)
        chosen = [secrets.choice(alphabet) for _ in range(self.length)]
        if self.require_each_included_type:
            # One character of each class at distinct random positions keeps the
            # distribution uniform over the remaining positions.
            positions = list(range(self.length))
            for characters in classes:
                position = positions.pop(secrets.randbelow(len(positions)))
                chosen[position] = secrets.choice(characters)
        return "".join(chosen)


def _boolean(variable: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ConfigurationError(f"{variable} must be true or false")
