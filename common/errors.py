"""The one exception tree of the project.

Every message names the problem and the key, label or user involved; no message
ever carries a password, a ``RotationToken`` or a whole secret.
"""

from __future__ import annotations


class RotationError(Exception):
    """Root of every error a rotation function raises on purpose."""


class EventFormatError(RotationError):
    """The invocation event is not a Secrets Manager rotation event."""


class RotationNotEnabledError(RotationError):
    """The secret does not have rotation enabled."""


class StagingError(RotationError):
    """The version or its staging labels are not in a state this step can act on."""


class SecretFormatError(RotationError):
    """A secret version's JSON lacks a key, has a key of the wrong type, or is not JSON."""


class SecretMismatchError(RotationError):
    """Two secret versions (or the master secret) disagree on host, port or user."""


class ConfigurationError(RotationError):
    """An environment variable or secret key configuring the function is invalid."""


class PasswordPolicyError(ConfigurationError):
    """The password policy settings cannot produce a password."""


class TlsConfigurationError(ConfigurationError):
    """The TLS settings are invalid, for example a CA bundle that does not exist."""


class StepTimeLimitError(RotationError):
    """The step stopped before Lambda's time-out would have killed it: what it still had
    to do (a login, a wait for a replica) does not fit in the time left."""


class PreflightRefusedError(RotationError):
    """A preflight was asked about a secret whose rotation function is not the function
    answering (or by an invocation that does not say which function it is)."""


class SecretsManagerError(RotationError):
    """A Secrets Manager call failed; ``code`` is the service's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class RdsError(RotationError):
    """Amazon RDS could not say where a database is, or said something that forbids the
    rotation (an instance or cluster that is not there, a host that is not one of its
    members); ``code`` is the service's error code when RDS answered with one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class DatabaseError(RotationError):
    """A database operation failed."""


class DatabaseConnectionError(DatabaseError):
    """The database could not be reached or the TLS handshake failed."""


class DatabaseLoginError(DatabaseError):
    """The database refused the credentials."""


class AccountBlockedError(DatabaseError):
    """The server blocks the account after too many refused logins in a row (MariaDB's
    ``max_password_errors``, MySQL 8's ``FAILED_LOGIN_ATTEMPTS``): it refuses every login,
    with any password, until an administrator unblocks it. Not a refused login: trying
    other credentials cannot help."""


class DatabaseOperationError(DatabaseError):
    """A statement was refused or failed."""


class PermissionDeniedError(DatabaseOperationError):
    """The server refused a statement for lack of a privilege."""


class VerificationError(DatabaseError):
    """The pending credentials logged in but do not hold what they must."""


class UnexpectedError(RotationError):
    """A failure the function did not foresee (a bug, or a library's own exception); its
    message is the original's, masked and cut short, and the original is its cause."""
