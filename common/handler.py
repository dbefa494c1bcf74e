"""The Lambda entry point shared by every engine's ``app.py``."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, Any, Generic, cast

from common.coldstart import long_lived
from common.deadline import Deadline
from common.engine import ConnectionT, Engine
from common.observability import logger, metrics
from common.rds import RdsDirectory
from common.rotation import Rotator, is_preflight, reported_step
from common.secretsmanager import SecretStore, build_client
from common.settings import Settings, log_level

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# The keys Powertools' inject_lambda_context adds to every line of an invocation.
LAMBDA_CONTEXT_KEYS = (
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
)


class RotationFunction(Generic[ConnectionT]):
    """A Lambda handler for one engine.

    The Secrets Manager client and settings are built on the first invocation and
    kept for the container's life; the RDS client only when a rotation first needs RDS
    (an RDS-managed master secret, a reader or replica). Tests inject clients, settings
    or an engine.
    """

    def __init__(
        self,
        engine: Engine[ConnectionT],
        *,
        client: SecretsManagerClient | None = None,
        settings: Settings | None = None,
        rds_client: RDSClient | None = None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._rds_client = rds_client
        self._settings = settings
        self._rotator: Rotator[ConnectionT] | None = None
        self._built_store: SecretStore | None = None
        # Never Powertools' event logging (POWERTOOLS_LOGGER_LOG_EVENT): it would write the
        # event, RotationToken included, before the step has registered it for masking.
        self._in_lambda = logger.inject_lambda_context(self._invoke, log_event=False)

    @property
    def engine(self) -> Engine[ConnectionT]:
        return self._engine

    @property
    def rotator(self) -> Rotator[ConnectionT]:
        if self._rotator is None:
            # The logger took its level at import, where a bad one cannot fail a step.
            log_level(os.environ)
            # Settings first: a bad one fails every step before anything is built.
            settings = self._settings or Settings.from_environ()
            self._rotator = Rotator(self._engine, self._store(), settings, RdsDirectory(self._rds_client))
        return self._rotator

    def _store(self) -> SecretStore:
        """The container's one Secrets Manager store: built once, even when a later part
        of the configuration fails, so that failing warm invocations build (and freeze)
        nothing new."""
        if self._built_store is None:
            # boto3 and its client live as long as the container (see common.coldstart).
            with long_lived():
                self._built_store = SecretStore(self._client or build_client())
        return self._built_store

    @property
    def secrets_manager_calls(self) -> Counter[str]:
        """Secrets Manager calls this container has made, by operation."""
        return Counter(self._rotator.store.calls) if self._rotator else Counter()

    @property
    def rds_calls(self) -> Counter[str]:
        """RDS calls this container has made, by operation."""
        return Counter(self._rotator.rds.calls) if self._rotator else Counter()

    def __call__(self, event: dict[str, Any], context: object = None) -> dict[str, Any] | None:
        """Lambda's calling convention: the event and the context. A rotation step returns
        nothing; a preflight event (``common.preflight``) returns its report, for the
        function's own secrets only (the context names the function).

        With a context (always, on Lambda) every log line of the invocation carries the
        request id, the function and whether this is the container's first invocation
        (Powertools' ``inject_lambda_context``), and that first one counts a ``ColdStart``
        metric. Without one (tests, local runs) neither is invented. The event itself is
        never logged, whatever ``POWERTOOLS_LOGGER_LOG_EVENT`` says: it carries the
        RotationToken.

        Building the rotator (settings, client) happens inside the step's report, so a
        configuration error (a bad ``POWERTOOLS_LOG_LEVEL`` or ``SECRETS_MANAGER_ENDPOINT``
        included) is a failed step like any other: logged with its reason, named, and
        counted."""
        if context is None:
            return self._invoke(event, None)
        try:
            return self._in_lambda(event, cast("LambdaContext", context))
        finally:
            logger.remove_keys(LAMBDA_CONTEXT_KEYS)

    def _invoke(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any] | None:
        # First thing: the remaining time now is the function's time-out, which the start-up
        # check compares settings against (building the rotator below takes some of it).
        deadline = Deadline.of(context)
        if context is not None and logger.get_current_keys().get("cold_start"):
            metrics.provider.add_cold_start_metric(context)
        if is_preflight(event):
            # Operators' tool only: rotation steps never import it.
            from common.preflight import Preflight, invoked_function

            return Preflight.of(self.rotator).answer(event, invoked_function(context), deadline)
        with reported_step(self._engine.name, event, self._calls_made) as done:
            # A step that cannot fit its own time limits in the function's time-out is a
            # configuration error, named before anything runs; the rest stop before the time-out.
            deadline.check_settings(self.rotator.settings.time_limits())
            done(self.rotator.run(event, deadline))
        return None

    def _calls_made(self) -> int:
        return sum(self._rotator.store.calls.values()) if self._rotator else 0
