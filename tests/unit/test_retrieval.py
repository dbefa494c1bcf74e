"""The application-side secret cache, and the extension fetcher against a stand-in of the
Parameters and Secrets Lambda Extension's HTTP API (the extension itself is an AWS
binary that cannot run here)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest

from appkit.retrieval import ExtensionFetcher, PowertoolsFetcher, SecretCache, default_fetchers
from common.errors import SecretFormatError
from tests.helpers import store_secret

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
def extension(sm_client: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The extension's API: GET /secretsmanager/get?secretId=&versionStage= with the
    X-Aws-Parameters-Secrets-Token header, answering GetSecretValue's JSON from moto."""
    seen: dict[str, Any] = {"tokens": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["tokens"].append(self.headers.get("X-Aws-Parameters-Secrets-Token"))
            query = parse_qs(urlparse(self.path).query)
            if self.headers.get("X-Aws-Parameters-Secrets-Token") != "session-token-1":
                self.send_response(401)
                self.end_headers()
                return
            try:
                body = sm_client.get_secret_value(
                    SecretId=query["secretId"][0], VersionStage=query.get("versionStage", ["AWSCURRENT"])[0]
                )
                status, payload = 200, json.dumps({k: v for k, v in body.items() if isinstance(v, str)})
            except sm_client.exceptions.ResourceNotFoundException:
                status, payload = 400, "ResourceNotFoundException: no such version"
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
