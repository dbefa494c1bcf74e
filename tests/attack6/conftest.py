"""Attack round 6 on issue 11: the RDS fixtures (moto's RDS names pointed at the suite's
real PostgreSQL primary and standby, and a MariaDB primary and GTID replica)."""

from tests.rds.conftest import endpoints, primary, rds, standby, world
from tests.rds.test_mariadb_topologies import maria, maria_world, replica

__all__ = ["endpoints", "maria", "maria_world", "primary", "rds", "replica", "standby", "world"]
