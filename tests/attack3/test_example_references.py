"""The example application and Parameter Store references, as the template deploys and
``sam local invoke`` runs it."""

from __future__ import annotations

import json
from typing import Any

from tests.deploy.template import Resolver, functions, load

REFERENCE = "/aws/reference/secretsmanager/prod/app/postgres"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/postgres-AbCdEf"


def _statements(template: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["ExampleReaderRole"]
    resolved = Resolver(template, overrides).value(role["Properties"])
    return [s for policy in resolved.get("Policies", []) for s in policy["PolicyDocument"]["Statement"] if s]


def test_the_example_role_cannot_read_its_secret_through_parameter_store() -> None:
    """apps/reader documents DB_SECRET_ID as 'the secret's ARN or name, or its Parameter
    Store reference', and issue 13 made SecretCache accept references. But the template
    sets DB_SECRET_ID from ExampleSecretArn, which is also the IAM Resource of the only
    read permission, and grants no ssm:GetParameter: given a reference, the role's policy
    names a Resource that is not an ARN (CloudFormation refuses it) and the function
    could not call GetParameter anyway. Expected: a reference deploys and can be read
    (ssm:GetParameter on the reference's parameter ARN, the secret's own read);
    actual: no statement grants ssm:GetParameter."""
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


def test_a_local_invoke_of_the_example_cannot_point_parameter_store_anywhere_local() -> None:
    """Issue 16: SAM passes only declared variables. The template declares
    SECRETS_MANAGER_ENDPOINT for local runs, but common.clients.build_ssm_client (used
    for every Parameter Store reference) ignores it and honours only
    AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, which the template does not declare: a
    `sam local invoke ExampleReaderFunction` with a reference goes to AWS's real SSM
    endpoint with the caller's own credentials whatever env.json says. Expected: a
    declared variable that points reference reads at a local endpoint; actual: none."""
    example = next(f for f in functions(load(), {"ExampleSecretArn": ARN}) if f.module.startswith("apps."))
    settable = set(example.environment)
    assert settable & {"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL", "SSM_ENDPOINT"}, (
        f"variables sam local invoke passes to {example.logical_id}: {sorted(settable)}"
    )
