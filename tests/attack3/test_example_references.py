"""The example application and Parameter Store references, as the template deploys and
``sam local invoke`` runs it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.clients import build_ssm_client
from common.errors import ConfigurationError
from tests.deploy.template import Resolver, functions, load

REFERENCE = "/aws/reference/secretsmanager/prod/app/postgres"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/postgres-AbCdEf"


def _statements(template: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["ExampleReaderRole"]
    resolved = Resolver(template, overrides).value(role["Properties"])
    return [s for policy in resolved.get("Policies", []) for s in policy["PolicyDocument"]["Statement"] if s]


def test_the_example_role_cannot_read_its_secret_through_parameter_store() -> None:
    """Regression (attack 3, was: no ssm:GetParameter, and a reference as an IAM
    Resource). Given a Parameter Store reference as ExampleSecretArn, the example's role
    may call ssm:GetParameter on that reference's parameter ARN only, and read the
    secret it names (its ARN, by name with the six-character suffix), nothing more."""
    template = load()
    statements = _statements(template, {"ExampleSecretArn": REFERENCE})
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    resources = [
        s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])
    ]
    assert "ssm:GetParameter" in actions and all(str(r).startswith("arn:") for r in resources), (
        f"with ExampleSecretArn={REFERENCE}: actions {sorted(actions)}, GetSecretValue on {resources}"
    )
    assert actions == {"ssm:GetParameter", "secretsmanager:GetSecretValue"}
    assert resources == [
        "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:prod/app/postgres-??????"
    ]
    ssm = [s["Resource"] for s in statements if s["Action"] == "ssm:GetParameter"]
    assert ssm == [f"arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter{REFERENCE}"]


def test_an_rds_managed_example_secret_may_find_its_database() -> None:
    """An RDS-managed secret (RDS names it rds!...) as the example's: the role may also
    describe that secret (its tags name the database) and the account's RDS databases in
    the region (the endpoint); an ordinary secret gets neither."""
    managed = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0a1b2c3d-AbCdEf"
    statements = _statements(load(), {"ExampleSecretArn": managed})
    assert statements[0]["Action"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    assert statements[0]["Resource"] == managed
    assert statements[1]["Action"] == ["rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    assert len(statements) == 2
    plain = _statements(load(), {"ExampleSecretArn": ARN})
    assert [s["Action"] for s in plain] == ["secretsmanager:GetSecretValue"]


def test_a_local_invoke_of_the_example_cannot_point_parameter_store_anywhere_local() -> None:
    """Regression (attack 3, was: no declared variable could point reference reads
    anywhere local). The example declares SSM_ENDPOINT (empty: the regional endpoint),
    which SAM passes from env.json and common.clients.build_ssm_client honours, checked
    as SECRETS_MANAGER_ENDPOINT is."""
    example = next(f for f in functions(load(), {"ExampleSecretArn": ARN}) if f.module.startswith("apps."))
    settable = set(example.environment)
    assert settable & {"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL", "SSM_ENDPOINT"}, (
        f"variables sam local invoke passes to {example.logical_id}: {sorted(settable)}"
    )
    assert example.environment["SSM_ENDPOINT"] == ""


def test_build_ssm_client_honours_ssm_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """SSM_ENDPOINT set: the client talks to it; malformed: a ConfigurationError naming it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SSM_ENDPOINT", "http://127.0.0.1:5000")
    assert build_ssm_client().meta.endpoint_url == "http://127.0.0.1:5000"
    monkeypatch.setenv("SSM_ENDPOINT", "127.0.0.1:5000")
    with pytest.raises(ConfigurationError, match="SSM_ENDPOINT must be an http:// or https:// URL"):
        build_ssm_client()
    monkeypatch.setenv("SSM_ENDPOINT", "")
    assert build_ssm_client().meta.endpoint_url == "https://ssm.us-east-1.amazonaws.com"
