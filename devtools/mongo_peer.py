"""A MongoDB wire-protocol peer for the tests: real SCRAM-SHA-256 and real user management.

No ``mongod`` can be installed on this machine. This server speaks the protocol PyMongo
uses (``OP_QUERY`` for the first ``hello``, ``OP_MSG`` after), over TLS with its own CA,
authenticates with SCRAM-SHA-256 on the server side (``scramp``), and holds users with
their stored keys and roles per authentication database. ``usersInfo``, ``createUser``,
``updateUser`` and ``dropUser`` really change what it holds, with MongoDB's
authorisation rules for them, so after a rotation the new password authenticates and the
old one is refused. Anything else answers ``CommandNotFound``.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from bson import Binary, decode, encode

from devtools.ports import listening_socket
from devtools.throwaway import ThrowawayServer

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
USER_ADMIN_ROLES = {"root", "userAdminAnyDatabase", "userAdmin"}
#: A role that grants the changeOwnPassword action (MongoDB needs a custom role for it).
CHANGE_OWN_PASSWORD_ROLE = "changeOwnPasswordRole"


@dataclass
class User:
    name: str
    db: str
    password: str = field(repr=False)
    roles: list[dict[str, str]]
    auth_info: tuple[Any, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self.set_password(self.password)

    def set_password(self, password: str) -> None:
        from scramp import ScramMechanism

        self.password = password
        self.auth_info = ScramMechanism("SCRAM-SHA-256").make_auth_info(password, iteration_count=4096)

    def may_administer_users(self) -> bool:
        return any(role["role"] in USER_ADMIN_ROLES for role in self.roles)


class MongoServer(ThrowawayServer):
    """What the tests need of any MongoDB server: clients, and the role each user holds."""

    engine_key = "mongo"
    admin_database = "admin"

    def connect_as(self, user: str, password: str, dbname: str | None = None) -> Any:
        import pymongo

        client: Any = pymongo.MongoClient(
            host=self.host,
            port=self.port,
            username=user,
            password=password,
            authSource=dbname or "admin",
            tls=True,
            tlsCAFile=self.ca_file,
            directConnection=True,
            serverSelectionTimeoutMS=5000,
        )
        try:
            client.admin.command("ping")
        except Exception:
            client.close()
            raise
        return client

    def whoami(self, user: str, password: str, dbname: str | None = None) -> tuple[str, str, str]:
        """(the authenticated user, the same, the transport) of a new session."""
        client = self.connect_as(user, password, dbname)
        try:
            users = client.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"]
        finally:
            client.close()
        name = str(users[0]["user"]) if users else ""
        return name, name, "negotiated"  # PyMongo does not report the protocol version

    def is_refusal(self, error: Exception) -> bool:
        import pymongo.errors

        return isinstance(error, pymongo.errors.OperationFailure) and error.code == 18

    @abstractmethod
    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        """A user that may read and write ``dbname`` and change its own password."""

    @abstractmethod
    def create_user_with_roles(
        self, user: str, password: str, dbname: str, roles: list[dict[str, str]]
    ) -> None: ...

    @abstractmethod
    def roles_of(self, user: str, dbname: str) -> set[tuple[str, str]] | None:
        """The user's (role, database) pairs, or None when there is no such user."""

    @abstractmethod
    def grant_role(self, user: str, dbname: str, role: str, role_db: str) -> None: ...

    @abstractmethod
    def create_master(self, user: str, password: str) -> None:
        """A user administrator in ``admin``, as a managed service's master user."""

    @abstractmethod
    def set_password(self, user: str, password: str, dbname: str | None = None) -> None: ...

    @abstractmethod
    def failed_logins(self) -> int: ...

    def create_database(self, dbname: str) -> None:
        return None  # databases exist as soon as users do


class MongoPeer(MongoServer):
    """The peer; :meth:`start` and :meth:`stop` like the other throwaway servers."""

    def __init__(self) -> None:
        super().__init__("rotation-mongo-")
        self.users: dict[tuple[str, str], User] = {}
        self.refused_logins = 0
        #: Client connections open right now (a test sees a client that was not closed).
        self.open_connections = 0
        #: Command name (lower case) -> error code the peer answers it with, for tests of
        #: a command failing after a successful login.
        self.failing_commands: dict[str, int] = {}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._context: ssl.SSLContext | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> MongoPeer:
        cert, key = self.make_certificates()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        # Bound to a port the kernel picks, read back: no window for another process to
        # take a probed port first (devtools/ports.py).
        self._listener = listening_socket(self.host)
        self.port = int(self._listener.getsockname()[1])
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        self.remove_files()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        assert self._context is not None
        with self._lock:
            self.open_connections += 1
        try:
            # TLS when the client starts a handshake (0x16), plaintext otherwise, as
            # mongod with tlsMode=preferTLS.
            raw.settimeout(30)
            first = raw.recv(1, socket.MSG_PEEK)
            stream: socket.socket = (
                self._context.wrap_socket(raw, server_side=True) if first == b"\x16" else raw
            )
            session = Session()
            while True:
                header = _read(stream, 16)
                if header is None:
                    return
                length, request_id, _, opcode = struct.unpack("<iiii", header)
                body = _read(stream, length - 16)
                if body is None:
                    return
                stream.sendall(self._answer(session, request_id, opcode, body))
        except (OSError, ssl.SSLError):
            return
        finally:
            raw.close()
            with self._lock:
                self.open_connections -= 1

    # -- the protocol -----------------------------------------------------------------

    def _answer(self, session: Session, request_id: int, opcode: int, body: bytes) -> bytes:
        if opcode == OP_QUERY:
            # flags, full collection name, skip, limit, then the command document.
            end = body.index(b"\x00", 4)
            command = decode(body[end + 9 :][: struct.unpack("<i", body[end + 9 : end + 13])[0]])
            reply = encode(self.command(session, command))
            payload = struct.pack("<iqii", 0, 0, 0, 1) + reply
            return struct.pack("<iiii", 16 + len(payload), 0, request_id, OP_REPLY) + payload
        if opcode == OP_MSG:
            command = decode(body[5 : 5 + struct.unpack("<i", body[5:9])[0]])
            payload = struct.pack("<I", 0) + b"\x00" + encode(self.command(session, command))
            return struct.pack("<iiii", 16 + len(payload), 0, request_id, OP_MSG) + payload
        return b""

    def command(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        name = next(iter(command))
        if name.lower() in self.failing_commands:
            code = self.failing_commands[name.lower()]
            return {"ok": 0, "errmsg": f"{name} failed on purpose", "code": code, "codeName": "TestFailure"}
        handler = getattr(self, f"_{name.lower()}", None)
        if handler is None:
            return {
                "ok": 0,
                "errmsg": f"no such command: '{name}'",
                "code": 59,
                "codeName": "CommandNotFound",
            }
        with self._lock:
            result: dict[str, Any] = handler(session, command)
        return result

    def _hello(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "ok": 1,
            "isWritablePrimary": True,
            "ismaster": True,
            "helloOk": True,
            "maxWireVersion": 17,
            "minWireVersion": 0,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48000000,
            "maxWriteBatchSize": 100000,
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": 1,
        }
        if "saslSupportedMechs" in command:
            reply["saslSupportedMechs"] = ["SCRAM-SHA-256"]
        return reply

    _ismaster = _hello

    def _ping(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        return {"ok": 1}

    def _endsessions(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        return {"ok": 1}

    def _buildinfo(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        return {"ok": 1, "version": "6.0.0-peer", "versionArray": [6, 0, 0, 0]}

    def _saslstart(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        from scramp import ScramMechanism

        if command.get("mechanism") != "SCRAM-SHA-256":
            return _auth_failed()
        database = command.get("$db", "admin")

        def auth_info(username: str) -> tuple[Any, ...]:
            user = self.users.get((database, username))
            if user is None:
                raise KeyError(username)
            session.candidate = user
            return user.auth_info

        session.scram = ScramMechanism("SCRAM-SHA-256").make_server(auth_info)
        session.database = database
        try:
            session.scram.set_client_first(bytes(command["payload"]).decode())
            first = session.scram.get_server_first()
        except Exception:  # noqa: BLE001 - any SCRAM failure is a refused login
            self.refused_logins += 1
            return _auth_failed()
        return {"ok": 1, "conversationId": 1, "done": False, "payload": Binary(first.encode())}

    def _saslcontinue(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        if session.scram is None:
            return _auth_failed()
        if session.user is not None:  # the client's empty last step
            return {"ok": 1, "conversationId": 1, "done": True, "payload": Binary(b"")}
        try:
            session.scram.set_client_final(bytes(command["payload"]).decode())
            final = session.scram.get_server_final()
        except Exception:  # noqa: BLE001 - a wrong proof is a refused login
            self.refused_logins += 1
            session.scram = None
            return _auth_failed()
        session.user = session.candidate
        return {"ok": 1, "conversationId": 1, "done": True, "payload": Binary(final.encode())}

    def _connectionstatus(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        users = [{"user": session.user.name, "db": session.user.db}] if session.user else []
        roles = list(session.user.roles) if session.user else []
        info: dict[str, Any] = {"authenticatedUsers": users, "authenticatedUserRoles": roles}
        if command.get("showPrivileges"):
            info["authenticatedUserPrivileges"] = [
                privilege for role in roles for privilege in _privileges(role)
            ]
        return {"ok": 1, "authInfo": info}

    def _usersinfo(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        database = command.get("$db", "admin")
        wanted = command["usersInfo"]
        name = str(wanted.get("user") if isinstance(wanted, dict) else wanted)
        database = str(wanted.get("db", database) if isinstance(wanted, dict) else database)
        if session.user is None or not (
            session.user.may_administer_users() or (session.user.name, session.user.db) == (name, database)
        ):
            return _unauthorized("usersInfo", database)
        user = self.users.get((database, name))
        found = (
            [{"_id": f"{database}.{name}", "user": name, "db": database, "roles": user.roles}] if user else []
        )
        return {"ok": 1, "users": found}

    def _createuser(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        database = command.get("$db", "admin")
        if session.user is None or not session.user.may_administer_users():
            return _unauthorized("createUser", database)
        key = (database, command["createUser"])
        if key in self.users:
            return {"ok": 0, "errmsg": f'User "{key[1]}@{key[0]}" already exists', "code": 51003}
        self.users[key] = User(key[1], database, command["pwd"], list(command.get("roles", [])))
        return {"ok": 1}

    def _updateuser(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        database = command.get("$db", "admin")
        key = (database, command["updateUser"])
        user = self.users.get(key)
        own = session.user is not None and (session.user.db, session.user.name) == key
        may_change_own = (
            own and any(r["role"] == CHANGE_OWN_PASSWORD_ROLE for r in user.roles) if user else False
        )
        admin = session.user is not None and session.user.may_administer_users()
        changes = {k for k in command if not k.startswith("$") and k not in ("lsid", "writeConcern")}
        if not admin and not (
            may_change_own and changes <= {"updateUser", "pwd", "digestPassword", "mechanisms"}
        ):
            return _unauthorized("updateUser", database)
        if user is None:
            return {
                "ok": 0,
                "errmsg": f"User {key[1]}@{key[0]} not found",
                "code": 11,
                "codeName": "UserNotFound",
            }
        if "pwd" in command:
            user.set_password(command["pwd"])
        if "roles" in command:
            user.roles = list(command["roles"])
        return {"ok": 1}

    def _dropuser(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        database = command.get("$db", "admin")
        if session.user is None or not session.user.may_administer_users():
            return _unauthorized("dropUser", database)
        self.users.pop((database, command["dropUser"]), None)
        return {"ok": 1}

    # -- what the runner, the benchmark and the tests make on the server ---------------

    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        database = dbname or self.admin_database
        roles = [{"role": "readWrite", "db": database}, {"role": CHANGE_OWN_PASSWORD_ROLE, "db": "admin"}]
        with self._lock:
            self.users[(database, user)] = User(user, database, password, roles)

    def create_user_with_roles(
        self, user: str, password: str, dbname: str, roles: list[dict[str, str]]
    ) -> None:
        with self._lock:
            self.users[(dbname, user)] = User(user, dbname, password, list(roles))

    def roles_of(self, user: str, dbname: str) -> set[tuple[str, str]] | None:
        with self._lock:
            found = self.users.get((dbname, user))
            return {(r["role"], r["db"]) for r in found.roles} if found else None

    def grant_role(self, user: str, dbname: str, role: str, role_db: str) -> None:
        with self._lock:
            self.users[(dbname, user)].roles.append({"role": role, "db": role_db})

    def create_master(self, user: str, password: str) -> None:
        with self._lock:
            self.users[("admin", user)] = User(
                user, "admin", password, [{"role": "userAdminAnyDatabase", "db": "admin"}]
            )

    def set_password(self, user: str, password: str, dbname: str | None = None) -> None:
        with self._lock:
            self.users[(dbname or self.admin_database, user)].set_password(password)

    def failed_logins(self) -> int:
        return self.refused_logins


@dataclass
class Session:
    """One client connection's authentication state."""

    scram: Any = None
    database: str = "admin"
    candidate: User | None = None
    user: User | None = None


def _read(stream: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


#: The actions of the roles the peer knows, as MongoDB lists them (abridged to user management).
_USER_ADMIN_ACTIONS = [
    "changeOwnPassword",
    "changePassword",
    "createUser",
    "dropUser",
    "grantRole",
    "revokeRole",
    "viewUser",
]


def _privileges(role: dict[str, str]) -> list[dict[str, Any]]:
    """MongoDB's privileges for one granted role (``connectionStatus`` with ``showPrivileges``)."""
    name, db = role["role"], role["db"]
    if name in ("root", "userAdminAnyDatabase"):
        return [{"resource": {"db": "", "collection": ""}, "actions": _USER_ADMIN_ACTIONS}]
    if name == "userAdmin":
        return [{"resource": {"db": db, "collection": ""}, "actions": _USER_ADMIN_ACTIONS}]
    if name == CHANGE_OWN_PASSWORD_ROLE:
        return [{"resource": {"db": "", "collection": ""}, "actions": ["changeOwnPassword"]}]
    if name in ("read", "readWrite"):
        actions = ["find"] + (["insert", "remove", "update"] if name == "readWrite" else [])
        return [{"resource": {"db": db, "collection": ""}, "actions": actions}]
    return []


def _auth_failed() -> dict[str, Any]:
    return {"ok": 0, "errmsg": "Authentication failed.", "code": 18, "codeName": "AuthenticationFailed"}


def _unauthorized(command: str, database: str) -> dict[str, Any]:
    return {
        "ok": 0,
        "errmsg": f"not authorized on {database} to execute command {{ {command}: ... }}",
        "code": 13,
        "codeName": "Unauthorized",
    }
