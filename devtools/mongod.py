"""A real ``mongod`` started by the test suite, when one is on ``PATH``.

Same throwaway shape as the other servers (temp dir, free port on 127.0.0.1, TLS
required with its own CA, ``--auth``); the first user is created through MongoDB's
localhost exception. Users are managed with the server's own commands. The suite uses
it instead of the wire-protocol peer whenever ``mongod`` is found (``MONGOD`` names
another binary). Not run on the machine this was written on: no ``mongod`` there.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from typing import Any

from devtools.mongo_peer import CHANGE_OWN_PASSWORD_ROLE, MongoServer
from devtools.processes import stop_child


def find_mongod() -> str | None:
    return os.environ.get("MONGOD") or shutil.which("mongod")


class MongodServer(MongoServer):
    def __init__(self) -> None:
        super().__init__("rotation-mongod-")
        self.admin_user, self.admin_password = "admin", secrets.token_urlsafe(24)
        self.log_path = self.root / "mongod.log"
        self._process: subprocess.Popen[Any] | None = None
        self._admin: Any = None

    def start(self) -> MongodServer:
        cert, key = self.make_certificates()
        combined = self.root / "tls" / "server-combined.pem"
        combined.write_text(cert.read_text() + key.read_text())
        combined.chmod(0o600)
        (self.root / "data").mkdir()
        binary = find_mongod()
        if binary is None:
            raise RuntimeError("mongod not found: install MongoDB or set MONGOD")
        self._process = self.start_service(
            [
                binary,
                "--dbpath",
                str(self.root / "data"),
                "--port",
                str(self.port),
                "--bind_ip",
                self.host,
                "--tlsMode",
                "requireTLS",
                "--tlsCertificateKeyFile",
                str(combined),
                "--auth",
                "--logpath",
                str(self.log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("mongod did not start in time")
        import pymongo

        # The localhost exception: the first user may be created without logging in.
        bootstrap: Any = pymongo.MongoClient(
            host=self.host, port=self.port, tls=True, tlsCAFile=self.ca_file, directConnection=True
        )
        bootstrap.admin.command("createUser", self.admin_user, pwd=self.admin_password, roles=["root"])
        bootstrap.close()
        self._admin = self.connect_as(self.admin_user, self.admin_password, "admin")
        self._admin.admin.command(
            "createRole",
            CHANGE_OWN_PASSWORD_ROLE,
            privileges=[{"resource": {"db": "", "collection": ""}, "actions": ["changeOwnPassword"]}],
            roles=[],
        )
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        stop_child(self._process)
        self.remove_files()

    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        database = dbname or self.admin_database
        self.create_user_with_roles(
            user,
            password,
            database,
            [{"role": "readWrite", "db": database}, {"role": CHANGE_OWN_PASSWORD_ROLE, "db": "admin"}],
        )

    def create_user_with_roles(
        self, user: str, password: str, dbname: str, roles: list[dict[str, str]]
    ) -> None:
        self._admin[dbname].command("createUser", user, pwd=password, roles=roles)

    def roles_of(self, user: str, dbname: str) -> set[tuple[str, str]] | None:
        users = self._admin[dbname].command("usersInfo", {"user": user, "db": dbname})["users"]
        return {(r["role"], r["db"]) for r in users[0]["roles"]} if users else None

    def grant_role(self, user: str, dbname: str, role: str, role_db: str) -> None:
        self._admin[dbname].command("grantRolesToUser", user, roles=[{"role": role, "db": role_db}])

    def create_master(self, user: str, password: str) -> None:
        self.create_user_with_roles(
            user, password, "admin", [{"role": "userAdminAnyDatabase", "db": "admin"}]
        )

    def set_password(self, user: str, password: str, dbname: str | None = None) -> None:
        self._admin[dbname or self.admin_database].command("updateUser", user, pwd=password)

    def failed_logins(self) -> int:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return len(re.findall(r"Authentication failed", text))
