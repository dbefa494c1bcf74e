"""The application-side secret cache, and the extension fetcher against a stand-in of the
Parameters and Secrets Lambda Extension's HTTP API (the extension itself is an AWS
binary that cannot run here)."""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest

from appkit.retrieval import (
    REFERENCE_PREFIX,
    ExtensionFetcher,
    Fetcher,
    PowertoolsFetcher,
    SecretCache,
    default_fetchers,
)
from common.errors import ConfigurationError, SecretFormatError, SecretsManagerError
from tests.conftest import REGION
from tests.helpers import Clock, store_secret

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService


def test_cache_reads_once_per_time_limit_and_on_refresh(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    arn = store_secret(sm_client, service, "app", {"username": "u", "password": "first-Pass-1"})
    fetcher, clock = PowertoolsFetcher(sm_client), Clock()
    cache = SecretCache(fetcher, max_age=60, clock=clock)
    assert cache.get(arn) == {"username": "u", "password": "first-Pass-1"}
    sm_client.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"username": "u", "password": "second-Pass-2"})
    )
    clock.now += 59
    assert cache.get(arn)["password"] == "first-Pass-1"  # type: ignore[index]
    assert fetcher.calls == 1
    assert cache.get(arn, refresh=True)["password"] == "second-Pass-2"  # type: ignore[index]
    clock.now += 61
    cache.get(arn)
    assert fetcher.calls == 3
    assert cache.get(arn, "AWSPENDING") is None  # no version carries it: not an error, not cached
    assert cache.get(arn, "AWSPREVIOUS")["password"] == "first-Pass-1"  # type: ignore[index]


def test_a_value_that_is_not_json_is_named_not_shown(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    arn = store_secret(sm_client, service, "raw", "not-json-Secret-9")
    with pytest.raises(SecretFormatError, match="is not valid JSON") as raised:
        SecretCache(PowertoolsFetcher(sm_client)).get(arn)
    assert "not-json-Secret-9" not in str(raised.value)


@pytest.fixture
def ssm_client(sm_client: SecretsManagerClient) -> Any:
    """Parameter Store in the same moto account as ``sm_client`` (moto resolves
    ``/aws/reference/secretsmanager/<name>[:<label>]`` references to the secret)."""
    import boto3

    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def extension(
    sm_client: SecretsManagerClient, ssm_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The extension's API with the X-Aws-Parameters-Secrets-Token header:
    GET /secretsmanager/get?secretId=&versionStage= answering GetSecretValue's JSON, and
    GET /systemsmanager/parameters/get?name=&withDecryption= answering GetParameter's,
    both from moto."""
    seen: dict[str, Any] = {"tokens": [], "paths": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["tokens"].append(self.headers.get("X-Aws-Parameters-Secrets-Token"))
            url = urlparse(self.path)
            query = parse_qs(url.query)
            seen["paths"].append(url.path)
            if self.headers.get("X-Aws-Parameters-Secrets-Token") != "session-token-1":
                self.send_response(401)
                self.end_headers()
                return
            try:
                if url.path == "/systemsmanager/parameters/get":
                    parameter = ssm_client.get_parameter(
                        Name=query["name"][0], WithDecryption=query["withDecryption"] == ["true"]
                    )["Parameter"]
                    body: dict[str, Any] = {
                        "Parameter": {k: v for k, v in parameter.items() if k != "LastModifiedDate"}
                    }
                else:
                    body = dict(
                        sm_client.get_secret_value(
                            SecretId=query["secretId"][0],
                            VersionStage=query.get("versionStage", ["AWSCURRENT"])[0],
                        )
                    )
                status, payload = (
                    200,
                    json.dumps({k: v for k, v in body.items() if isinstance(v, (str, dict))}),
                )
            except sm_client.exceptions.ResourceNotFoundException:
                status, payload = 400, "ResourceNotFoundException: no such version"
            except ssm_client.exceptions.ParameterNotFound:
                status, payload = 400, "ParameterNotFound: no such parameter"
            self.send_response(status)
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.server_address[1]))
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-1")
    yield seen
    server.shutdown()
    thread.join(timeout=5)


def test_extension_is_detected_and_sends_the_session_token(
    sm_client: SecretsManagerClient, service: RotationService, extension: dict[str, Any]
) -> None:
    arn = store_secret(sm_client, service, "via-extension", {"password": "ext-Pass-1"})
    reader, refresher = default_fetchers(sm_client)
    assert isinstance(reader, ExtensionFetcher) and isinstance(refresher, PowertoolsFetcher)
    cache = SecretCache(reader, refresher)
    assert cache.get(arn) == {"password": "ext-Pass-1"}
    assert cache.get(arn, "AWSPENDING") is None
    assert extension["tokens"] == ["session-token-1", "session-token-1"]
    cache.get(arn, refresh=True)  # forced refreshes bypass the extension's own cache
    assert len(extension["tokens"]) == 2 and refresher.calls == 1


def test_retrieval_mode_can_be_chosen(
    monkeypatch: pytest.MonkeyPatch, sm_client: SecretsManagerClient
) -> None:
    monkeypatch.setenv("SECRETS_RETRIEVAL", "powertools")
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")
    assert all(isinstance(f, PowertoolsFetcher) for f in default_fetchers(sm_client))
    monkeypatch.setenv("SECRETS_RETRIEVAL", "extension")
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
    assert isinstance(default_fetchers(sm_client)[0], ExtensionFetcher)


# --- SECRETS_MAX_AGE -------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["abc", "0x10", "nan", "-5", "inf", "-inf", "1e400"])
def test_an_unusable_secrets_max_age_is_refused_by_name(
    raw: str, monkeypatch: pytest.MonkeyPatch, sm_client: SecretsManagerClient
) -> None:
    monkeypatch.setenv("SECRETS_MAX_AGE", raw)
    with pytest.raises(ConfigurationError, match="SECRETS_MAX_AGE must be a .*number of seconds, 0 or more"):
        SecretCache(PowertoolsFetcher(sm_client))


@pytest.mark.parametrize("value", [float("nan"), -1.0, float("inf")])
def test_an_unusable_max_age_argument_is_refused_by_name(
    value: float, sm_client: SecretsManagerClient
) -> None:
    with pytest.raises(ConfigurationError, match="max_age must be a finite number of seconds"):
        SecretCache(PowertoolsFetcher(sm_client), max_age=value)


@pytest.mark.parametrize(("raw", "reads"), [("", 1), ("  ", 1), ("300", 1), ("0", 3), ("2.5", 2)])
def test_secrets_max_age_sets_the_time_limit(
    raw: str,
    reads: int,
    monkeypatch: pytest.MonkeyPatch,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Unset or empty means 300 s (as the DB_* variables' empty values mean their default)."""
    arn = store_secret(sm_client, service, "aged", {"password": "aged-Pass-1"})
    monkeypatch.setenv("SECRETS_MAX_AGE", raw)
    fetcher, clock = PowertoolsFetcher(sm_client), Clock()
    cache = SecretCache(fetcher, clock=clock)
    for step in (0, 2, 1):  # reads at t = 0, 2 and 3 s
        clock.now += step
        cache.get(arn)
    assert fetcher.calls == reads


# --- A secret that does not exist --------------------------------------------------------


@pytest.mark.parametrize("route", ["powertools", "extension"])
@pytest.mark.parametrize("secret_id", ["prod/no-such-secret", f"{REFERENCE_PREFIX}prod/no-such-secret"])
def test_prime_fails_at_once_naming_a_secret_that_does_not_exist(
    route: str,
    secret_id: str,
    sm_client: SecretsManagerClient,
    ssm_client: Any,
    request: pytest.FixtureRequest,
) -> None:
    from appkit.connections import RotationAwareConnection
    from rotators.postgresql.engine import PostgresEngine

    if route == "extension":
        request.getfixturevalue("extension")
        fetcher: Fetcher = ExtensionFetcher()
    else:
        fetcher = PowertoolsFetcher(sm_client, ssm_client)
    database = RotationAwareConnection(PostgresEngine(), secret_id, SecretCache(fetcher))
    with pytest.raises(SecretsManagerError, match=f"secret '{secret_id}' was not found") as raised:
        database.prime()
    assert raised.value.code == "ResourceNotFoundException"


def test_prime_names_a_secret_that_is_not_a_database_secret(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    from appkit.connections import RotationAwareConnection
    from rotators.postgresql.engine import PostgresEngine

    arn = store_secret(sm_client, service, "api-key", {"api_key": "not-a-Database-1"})
    database = RotationAwareConnection(PostgresEngine(), arn, SecretCache(PowertoolsFetcher(sm_client)))
    with pytest.raises(SecretFormatError, match="AWSCURRENT of .*api-key") as raised:
        database.prime()
    assert "not-a-Database-1" not in str(raised.value)


# --- A port that is not the extension ----------------------------------------------------


@contextmanager
def impostor(answer: bytes | None) -> Iterator[int]:
    """A TCP server on a free port of 127.0.0.1 that reads a request and writes ``answer``
    (raw bytes), or closes the connection at once when ``answer`` is None; its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                if answer is not None:
                    connection.recv(65536)
                    connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, "did not answer as the Parameters .*: (RemoteDisconnected|ConnectionResetError)"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "did not answer as the Parameters and Secrets extension"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "unexpected answer"),  # was AttributeError
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "did not answer as the Parameters"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "answered HTTP 403"),
    ],
    ids=["closes", "not-http", "json-not-an-object", "not-json", "refuses"],
)
def test_a_port_held_by_something_else_is_named(answer: bytes | None, reason: str) -> None:
    with impostor(answer) as port:
        with pytest.raises(SecretsManagerError, match=reason) as raised:
            ExtensionFetcher(port=port, timeout=2).fetch("prod/app", "AWSCURRENT")
    assert f"http://localhost:{port}" in str(raised.value)


def test_a_port_nobody_listens_on_is_named() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(SecretsManagerError, match="did not answer as the Parameters") as raised:
            ExtensionFetcher(port=port, timeout=2).fetch("prod/app", "AWSCURRENT")
    assert str(raised.value).endswith("ConnectionRefusedError")


@pytest.mark.parametrize("raw", ["abc", "0", "70000"])
def test_an_unusable_extension_port_is_refused_by_name(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raw)
    with pytest.raises(ConfigurationError, match="PARAMETERS_SECRETS_EXTENSION_HTTP_PORT must be a port"):
        ExtensionFetcher()


# --- Parameter Store references ----------------------------------------------------------


def secret_in_rotation(sm_client: SecretsManagerClient, service: RotationService, name: str) -> str:
    """A secret whose AWSCURRENT and AWSPENDING differ (a rotation between its steps)."""
    arn = store_secret(sm_client, service, name, {"password": "current-Pass-1"})
    sm_client.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"password": "pending-Pass-2"}), VersionStages=["AWSPENDING"]
    )
    return arn


def test_a_parameter_store_reference_reads_every_label_through_powertools(
    sm_client: SecretsManagerClient, ssm_client: Any, service: RotationService
) -> None:
    secret_in_rotation(sm_client, service, "team/db")
    reference = f"{REFERENCE_PREFIX}team/db"
    fetcher = PowertoolsFetcher(sm_client, ssm_client)
    cache = SecretCache(fetcher, max_age=60)
    assert cache.get(reference) == {"password": "current-Pass-1"}
    assert cache.get(reference, "AWSPENDING") == {"password": "pending-Pass-2"}
    assert cache.get(reference, "AWSPREVIOUS") is None  # no version carries it
    assert cache.get(reference) == {"password": "current-Pass-1"} and fetcher.calls == 3  # cached
    # Secrets Manager itself knows no secret of that name: the value came through SSM.
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=reference)


def test_a_parameter_store_reference_reads_through_the_extension(
    sm_client: SecretsManagerClient, service: RotationService, extension: dict[str, Any]
) -> None:
    secret_in_rotation(sm_client, service, "team/db")
    reference = f"{REFERENCE_PREFIX}team/db"
    cache = SecretCache(ExtensionFetcher())
    assert cache.get(reference) == {"password": "current-Pass-1"}
    assert cache.get(reference, "AWSPENDING") == {"password": "pending-Pass-2"}
    assert cache.get(reference, "AWSPREVIOUS") is None
    assert extension["paths"] == ["/systemsmanager/parameters/get"] * 3


def test_a_reference_with_its_own_version_selector_is_refused(sm_client: SecretsManagerClient) -> None:
    with pytest.raises(ConfigurationError, match="without a version selector"):
        SecretCache(PowertoolsFetcher(sm_client)).get(f"{REFERENCE_PREFIX}team/db:AWSPREVIOUS")


def test_a_refused_describe_secret_names_the_call_and_why(sm_client: SecretsManagerClient) -> None:
    """An application whose role lacks secretsmanager:DescribeSecret, reading a secret
    without host and engine: the error names the call, the code AWS answered and why the
    tags are read (botocore's own error path, the refusal injected where IAM would answer)."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    from appkit.managed import ManagedSecrets
    from common.errors import SecretsManagerError

    arn = sm_client.create_secret(Name="rds!db-1", SecretString='{"username": "u", "password": "p"}')["ARN"]

    def refuse(**_: object) -> Any:  # botocore types its hooks as returning None
        parsed = {"Error": {"Code": "AccessDeniedException", "Message": "no"}, "ResponseMetadata": {}}
        return AWSResponse("https://secretsmanager", 400, HTTPHeaders(), None), parsed

    sm_client.meta.events.register("before-call.secrets-manager.DescribeSecret", refuse)
    try:
        with pytest.raises(SecretsManagerError) as raised:
            ManagedSecrets(sm_client).secret(arn, {"username": "u", "password": "p"}, "AWSCURRENT")
    finally:
        sm_client.meta.events.unregister("before-call.secrets-manager.DescribeSecret", refuse)
    message = str(raised.value)
    assert "secretsmanager:DescribeSecret on" in message and "AccessDeniedException" in message
    assert "tags are read" in message and raised.value.code == "AccessDeniedException"
