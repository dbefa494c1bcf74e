"""doctor never prints a secret value: not even when the password sits inside another
field (a connection-string host, common for MongoDB and DocumentDB secrets)."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest

from operator_tools.cli import main
from operator_tools.masking import Masker, hide_url_credentials
from tests.operator.test_doctor import make_secret, user, world

if TYPE_CHECKING:
    from devtools.postgres import PostgresServer
    from tests.operator.world import World

__all__ = ["user", "world"]


@pytest.mark.parametrize("as_json", [False, True])
def test_doctor_does_not_print_a_password_inside_the_host(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], as_json: bool
) -> None:
    name, password, dbname = user
    host = f"postgresql://{name}:{password}@{postgres.host}:{postgres.port}/{dbname}"
    arn = make_secret(world, postgres, user, host=host)
    world.deploy()
    world.allow_rotation(arn)
    out = io.StringIO()
    main(["doctor", arn, *(["--json"] if as_json else [])], aws=world.aws, out=out)
    printed = out.getvalue()
    assert password not in printed, [line for line in printed.splitlines() if password in line]
    if as_json:
        secret_line = next(c for c in json.loads(printed)["checks"] if c["check"] == "secret")["reason"]
    else:
        secret_line = next(line for line in printed.splitlines() if " secret " in f" {line} ")
    assert f"postgresql://***@{postgres.host}:{postgres.port}/{dbname}" in secret_line


def test_the_mask_covers_registered_values_and_url_credentials() -> None:
    masker = Masker()
    masker.register_secret({"password": 'p"w\\1', "host": "mongodb://app:s%40cret@db:27017/x", "port": 1})
    shown = masker.mask('{"a": "p\\"w\\\\1"} raw p"w\\1 s@cret s%40cret mongodb://u:v@h/')
    assert shown == '{"a": "***"} raw *** *** *** mongodb://***@h/'
    assert hide_url_credentials("postgresql://u:pw@h:5432/db") == "postgresql://***@h:5432/db"
