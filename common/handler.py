"""The Lambda entry point shared by every engine's ``app.py``."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Generic

from common.engine import ConnectionT, Engine
from common.preflight import Preflight, is_preflight
from common.rotation import Rotator, reported_step
from common.secretsmanager import SecretStore, build_client
from common.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class RotationFunction(Generic[ConnectionT]):
    """A Lambda handler for one engine.

    The Secrets Manager client and settings are built on the first invocation and
    kept for the container's life; tests inject a client, settings or an engine.
    """

    def __init__(
        self,
        engine: Engine[ConnectionT],
        *,
        client: SecretsManagerClient | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings
        self._rotator: Rotator[ConnectionT] | None = None

    @property
    def engine(self) -> Engine[ConnectionT]:
        return self._engine

    @property
    def rotator(self) -> Rotator[ConnectionT]:
        if self._rotator is None:
            store = SecretStore(self._client or build_client())
            self._rotator = Rotator(self._engine, store, self._settings or Settings.from_environ())
        return self._rotator

    @property
    def secrets_manager_calls(self) -> Counter[str]:
        """Secrets Manager calls this container has made, by operation."""
        return Counter(self._rotator.store.calls) if self._rotator else Counter()

    def __call__(self, event: dict[str, Any], context: object = None) -> dict[str, Any] | None:
        """Lambda's calling convention: the event and the context. A rotation step returns
        nothing; a preflight event (``common.preflight``) returns its report.

        Building the rotator (settings, client) happens inside the step's report, so a
        configuration error is a failed step like any other: logged with its reason and
        counted."""
        if is_preflight(event):
            return Preflight.of(self.rotator).answer(event)
        with reported_step(self._engine.name, event, self._calls_made) as done:
            done(self.rotator.run(event))
        return None

    def _calls_made(self) -> int:
        return sum(self._rotator.store.calls.values()) if self._rotator else 0
