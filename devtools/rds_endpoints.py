"""RDS endpoint names pointed at throwaway servers, inside this process only.

moto answers RDS calls with endpoint names such as
``<id>.aaaaaaaaaa.us-east-1.rds.amazonaws.com``. A test maps each name to a throwaway
server's port on 127.0.0.1 and starts the servers with :data:`CERTIFICATE_NAMES` in their
certificates, so TLS is still verified by name: libpq connects to ``hostaddr`` while it
verifies ``host``; PyMySQL opens its socket through ``socket.create_connection`` and
verifies the host name it was given.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

REGION = "us-east-1"
ACCOUNT = "123456789012"
#: The zone of moto's DB instance endpoints.
INSTANCE_ZONE = f"aaaaaaaaaa.{REGION}.rds.amazonaws.com"
#: The random part of cluster endpoints, pinned by :func:`pin_cluster_endpoints`.
CLUSTER_URL_ID = "rotationtest"
#: Wildcard names covering every instance and (pinned) cluster endpoint moto makes.
CERTIFICATE_NAMES = [
    f"*.{INSTANCE_ZONE}",
    f"*.cluster-{CLUSTER_URL_ID}.{REGION}.rds.amazonaws.com",
    f"*.cluster-ro-{CLUSTER_URL_ID}.{REGION}.rds.amazonaws.com",
]


def instance_address(identifier: str) -> str:
    return f"{identifier}.{INSTANCE_ZONE}"


def pin_cluster_endpoints(cluster_id: str) -> None:
    """Give a moto cluster's endpoints :data:`CLUSTER_URL_ID` instead of moto's random
    part, so that certificates made before the cluster carry its names."""
    from moto.rds.models import rds_backends

    rds_backends[ACCOUNT][REGION].clusters[cluster_id].url_identifier = CLUSTER_URL_ID


class EndpointMap:
    """Host name -> port on 127.0.0.1, applied to database connections while installed."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}

    def point(self, host: str, port: int) -> None:
        self.ports[host.lower()] = port

    def _target(self, host: object) -> int | None:
        return self.ports.get(host.lower()) if isinstance(host, str) else None

    @contextmanager
    def installed(self) -> Iterator[EndpointMap]:
        """Route psycopg2 and PyMySQL connections to mapped names; restored on exit."""
        import psycopg2

        connect, create_connection = psycopg2.connect, socket.create_connection

        def routed_connect(dsn: str | None = None, *args: Any, **kwargs: Any) -> Any:
            port = self._target(kwargs.get("host"))
            if port is not None:
                kwargs = {**kwargs, "hostaddr": "127.0.0.1", "port": port}
            return connect(dsn, *args, **kwargs)

        def routed_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            port = self._target(address[0])
            return create_connection(("127.0.0.1", port) if port is not None else address, *args, **kwargs)

        psycopg2.connect = routed_connect
        socket.create_connection = routed_create_connection  # type: ignore[assignment]
        try:
            yield self
        finally:
            psycopg2.connect = connect
            socket.create_connection = create_connection
