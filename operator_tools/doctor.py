"""``doctor SECRET``: every reason a rotation of one secret can fail, checked in order.

Each check is a function of the :class:`Diagnosis` gathered so far, returning one or
more results; a check whose inputs an earlier check could not get is skipped. Values of
secrets are read only to compare them (the environment check) and are never printed:
every credential read is registered with the run's :class:`~operator_tools.masking.Masker`,
through which the command prints everything.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from operator_tools.aws import (
    AWS_ERRORS,
    AWSCURRENT,
    AWSPENDING,
    ToolError,
    account_of,
    created_date,
    error_code,
    function_timeout,
    now,
    stuck_pending,
    version_with,
    when,
)
from operator_tools.masking import Masker, hide_url_credentials
from operator_tools.report import Result, Status, failed, passed, skipped, unknown
from operator_tools.suite import ROTATION_STEPS, SUITE_HANDLERS, overdue, pending_state, rotating_window

if TYPE_CHECKING:
    from collections.abc import Callable

    from operator_tools.aws import Aws

ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:ListSecretVersionIds",
)
#: What the function calls for an RDS-managed master secret or a reader's database.
RDS_ACTIONS = ("rds:DescribeDBInstances", "rds:DescribeDBClusters")
RDS_MASTER_TAGS = frozenset({"aws:rds:primaryDBInstanceArn", "aws:rds:primaryDBClusterArn"})
RDS_DOMAINS = (".rds.amazonaws.com", ".rds.amazonaws.com.cn", ".docdb.amazonaws.com")
#: Environment variables of the suite whose names only look like secrets.
KNOWN_VARIABLES = frozenset(
    {
        "PASSWORD_LENGTH",
        "EXCLUDE_CHARACTERS",
        "EXCLUDE_NUMBERS",
        "EXCLUDE_PUNCTUATION",
        "EXCLUDE_UPPERCASE",
        "EXCLUDE_LOWERCASE",
        "REQUIRE_EACH_INCLUDED_TYPE",
        "SECRETS_MANAGER_ENDPOINT",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "SECRETS_RETRIEVAL",
        "SECRETS_MAX_AGE",
    }
)
SECRET_LIKE_NAME = re.compile(
    r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY", re.IGNORECASE
)
#: Time a step needs beyond its logins and statements: Secrets Manager calls, start-up.
STEP_OVERHEAD_S = 10


@dataclass
class Diagnosis:
    """What the checks have learnt so far."""

    aws: Aws
    secret_id: str
    secret: dict[str, Any] | None = None
    value: dict[str, Any] | None = field(default=None, repr=False)
    function: dict[str, Any] | None = None
    masker: Masker = field(default_factory=Masker)
    max_refused: int | None = None

    @property
    def arn(self) -> str:
        return str(self.secret["ARN"]) if self.secret else self.secret_id

    @property
    def fix_repair(self) -> str:
        return f"secrets-rotation repair {self.secret_id}"


def diagnose(
    aws: Aws, secret_id: str, masker: Masker | None = None, max_refused: int | None = None
) -> list[Result]:
    """Every check, in order; the secret's credentials are registered with ``masker``
    (print the results only through it). ``max_refused``: the preflight's
    ``MaxRefusedLogins`` (None: the function's default)."""
    diagnosis = Diagnosis(aws, secret_id, masker=masker or Masker(), max_refused=max_refused)
    results: list[Result] = []
    checks: list[Callable[[Diagnosis], list[Result]]] = [
        check_secret,
        check_rotation,
        check_labels,
        check_function,
        check_invoke_permission,
        check_timeout,
        check_network,
        check_role,
        check_kms,
        check_environment,
        check_preflight,
    ]
    for check in checks:
        results.extend(check(diagnosis))
    return results


def needs_function(
    name: str,
) -> Callable[[Callable[[Diagnosis, dict[str, Any]], list[Result]]], Callable[[Diagnosis], list[Result]]]:
    """A check of the function's configuration: skipped when there is no function."""

    def wrap(
        check: Callable[[Diagnosis, dict[str, Any]], list[Result]],
    ) -> Callable[[Diagnosis], list[Result]]:
        @functools.wraps(check)
        def run(diagnosis: Diagnosis) -> list[Result]:
            if diagnosis.function is None:
                return [skipped(name, "no function to check")]
            return check(diagnosis, diagnosis.function)

        return run

    return wrap


# -- the secret ------------------------------------------------------------------------


def check_secret(diagnosis: Diagnosis) -> list[Result]:
    sm = diagnosis.aws.client("secretsmanager")
    try:
        diagnosis.secret = sm.describe_secret(SecretId=diagnosis.secret_id)
    except AWS_ERRORS as error:
        code = error_code(error)
        if code == "ResourceNotFoundException":
            return [
                failed(
                    "secret",
                    f"no secret {diagnosis.secret_id!r} in {diagnosis.aws.region}",
                    "check the name or ARN, and --region",
                )
            ]
        return [
            failed(
                "secret", f"DescribeSecret failed: {code}", "allow the caller secretsmanager:DescribeSecret"
            )
        ]
    try:
        response = sm.get_secret_value(SecretId=diagnosis.arn, VersionStage=AWSCURRENT)
    except AWS_ERRORS as error:
        return [
            failed(
                "secret",
                f"exists, but the caller may not read its value ({error_code(error)})",
                "allow the caller secretsmanager:GetSecretValue on it, and kms:Decrypt on its key",
            )
        ]
    try:
        value = json.loads(response.get("SecretString") or "null")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return [failed("secret", f"its {AWSCURRENT} version is not a JSON object", "store AWS's JSON format")]
    diagnosis.value = value
    diagnosis.masker.register_secret(value)
    where = f"{hide_url_credentials(str(value.get('host', '?')))}:{value.get('port', 'default port')}"
    return [
        passed(
            "secret",
            f"readable: engine {value.get('engine')!r}, user {value.get('username')!r} at {where} "
            "(values not shown)",
        )
    ]


def check_rotation(diagnosis: Diagnosis) -> list[Result]:
    secret = diagnosis.secret
    if secret is None:
        return [skipped("rotation", "the secret could not be read")]
    function = secret.get("RotationLambdaARN")
    if not secret.get("RotationEnabled") or not function:
        return [
            failed(
                "rotation",
                "rotation is not enabled" if function else "rotation is not enabled and no function is set",
                f"aws secretsmanager rotate-secret --secret-id {diagnosis.secret_id} "
                "--rotation-lambda-arn <function ARN> --rotation-rules ScheduleExpression='rate(30 days)'",
            )
        ]
    rules = secret.get("RotationRules", {})
    schedule = rules.get("ScheduleExpression") or (
        f"every {rules['AutomaticallyAfterDays']} days"
        if "AutomaticallyAfterDays" in rules
        else "no schedule"
    )
    window = f", window {rules['Duration']}" if rules.get("Duration") else ""
    times = f"last rotated {when(secret.get('LastRotatedDate'))}, next {when(secret.get('NextRotationDate'))}"
    reason = f"enabled, {schedule}{window}; {times}; function {function.split(':')[-1]}"
    if overdue(secret, now()):
        return [failed("rotation", f"overdue: {reason}", "see the labels and preflight checks below")]
    return [passed("rotation", reason)]


def check_labels(diagnosis: Diagnosis) -> list[Result]:
    if diagnosis.secret is None:
        return [skipped("labels", "the secret could not be read")]
    versions = diagnosis.secret.get("VersionIdsToStages", {})
    if version_with(versions, AWSCURRENT) is None:
        return [failed("labels", f"no version is labelled {AWSCURRENT}", diagnosis.fix_repair)]
    pending = stuck_pending(versions)
    if pending is None:
        return [
            passed("labels", f"{AWSCURRENT} on {version_with(versions, AWSCURRENT)}, no rotation in progress")
        ]
    try:
        created = created_date(diagnosis.aws, diagnosis.arn, pending)
        since = when(created)
    except AWS_ERRORS:
        created, since = None, "a time the caller may not read (ListSecretVersionIds)"
    timeout = function_timeout(diagnosis.aws, diagnosis.secret.get("RotationLambdaARN"))
    if pending_state(created, timeout, now()) == "rotating":
        minutes = int(rotating_window(timeout).total_seconds() // 60)
        return [
            Result(
                "labels",
                "info",
                f"a rotation is in progress: version {pending} is labelled {AWSPENDING} since {since}, "
                f"within the {minutes} min a rotation may take ({ROTATION_STEPS} steps at the "
                "function's time-out, and a margin)",
            )
        ]
    return [
        failed(
            "labels",
            f"a rotation is stuck: version {pending} is labelled {AWSPENDING} since {since}; "
            "every later rotation is refused until it is cleared",
            diagnosis.fix_repair,
        )
    ]


# -- the function ----------------------------------------------------------------------


def check_function(diagnosis: Diagnosis) -> list[Result]:
    arn = (diagnosis.secret or {}).get("RotationLambdaARN")
    if not arn:
        return [skipped("function", "no rotation function is set")]
    try:
        diagnosis.function = diagnosis.aws.client("lambda").get_function_configuration(FunctionName=arn)
    except AWS_ERRORS as error:
        if error_code(error) == "ResourceNotFoundException":
            return [
                failed(
                    "function",
                    f"{arn} does not exist",
                    "deploy the stack, or attach the secret to its function",
                )
            ]
        return [
            unknown(
                "function",
                f"GetFunctionConfiguration failed: {error_code(error)}",
                "allow the caller lambda:GetFunctionConfiguration",
            )
        ]
    handler = str(diagnosis.function.get("Handler", ""))
    engines = SUITE_HANDLERS.get(handler)
    if engines is None:
        return [
            failed(
                "function",
                f"{arn.split(':')[-1]} runs {handler!r}, not one of this suite's functions",
                "attach the secret to the suite's function for its engine",
            )
        ]
    engine = str((diagnosis.value or {}).get("engine", "")).strip().lower()
    if engine and engine not in engines:
        return [
            failed(
                "function",
                f"{arn.split(':')[-1]} serves {', '.join(sorted(engines))}; the secret's engine "
                f"is {engine!r}",
                "attach the secret to the suite's function for its engine",
            )
        ]
    return [passed("function", f"{arn.split(':')[-1]}: {handler} ({diagnosis.function.get('Runtime', '?')})")]


@needs_function("invoke permission")
def check_invoke_permission(diagnosis: Diagnosis, function: dict[str, Any]) -> list[Result]:
    function_arn = function["FunctionArn"]
    account = account_of(diagnosis.arn)
    fix = (
        f"aws lambda add-permission --function-name {function_arn} --statement-id SecretsManager "
        f"--action lambda:InvokeFunction --principal secretsmanager.amazonaws.com --source-account {account}"
    )
    try:
        policy = json.loads(diagnosis.aws.client("lambda").get_policy(FunctionName=function_arn)["Policy"])
    except AWS_ERRORS as error:
        if error_code(error) == "ResourceNotFoundException":
            return [
                failed(
                    "invoke permission",
                    "the function has no resource policy: Secrets Manager may not invoke it",
                    fix,
                )
            ]
        return [
            unknown(
                "invoke permission",
                f"GetPolicy failed: {error_code(error)}",
                "allow the caller lambda:GetPolicy",
            )
        ]
    grants = [s for s in policy.get("Statement", []) if _lets_secrets_manager_invoke(s)]
    if not grants:
        return [
            failed(
                "invoke permission", "no statement lets secretsmanager.amazonaws.com invoke the function", fix
            )
        ]
    for statement in grants:
        conditions = {
            key.lower(): value
            for operator in statement.get("Condition", {}).values()
            for key, value in operator.items()
        }
        accounts = conditions.get("aws:sourceaccount")
        if accounts == account or (isinstance(accounts, list) and account in accounts):
            return [
                passed("invoke permission", f"Secrets Manager may invoke it, limited to account {account}")
            ]
    return [
        failed(
            "invoke permission",
            "Secrets Manager may invoke it without an aws:SourceAccount condition "
            "(any account's secrets could)",
            fix,
        )
    ]


def _lets_secrets_manager_invoke(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal", {})
    services = principal.get("Service", []) if isinstance(principal, dict) else []
    services = [services] if isinstance(services, str) else services
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    return (
        statement.get("Effect") == "Allow"
        and "secretsmanager.amazonaws.com" in services
        and any(action in ("lambda:InvokeFunction", "lambda:*") for action in actions)
    )


def _environment(diagnosis: Diagnosis) -> dict[str, str]:
    return dict(((diagnosis.function or {}).get("Environment") or {}).get("Variables") or {})


@needs_function("time-out")
def check_timeout(diagnosis: Diagnosis, function: dict[str, Any]) -> list[Result]:
    env = _environment(diagnosis)
    try:
        connect = int(env.get("DB_CONNECT_TIMEOUT") or 5)
        statement = int(env.get("DB_STATEMENT_TIMEOUT") or 30)
    except ValueError:
        return [
            failed(
                "time-out",
                "DB_CONNECT_TIMEOUT or DB_STATEMENT_TIMEOUT is not a whole number",
                "fix the variable",
            )
        ]
    # setSecret may try three logins (AWSCURRENT, AWSPENDING, AWSPREVIOUS) before its statements run.
    needed = 3 * connect + statement + STEP_OVERHEAD_S
    timeout = int(function.get("Timeout", 3))
    reason = (
        f"{timeout} s; a step may need {needed} s "
        f"(3 logins x {connect} s, statements {statement} s, {STEP_OVERHEAD_S} s)"
    )
    if timeout < needed:
        return [failed("time-out", reason, f"set the function's Timeout to at least {needed} s")]
    return [passed("time-out", reason)]


@needs_function("network")
def check_network(diagnosis: Diagnosis, function: dict[str, Any]) -> list[Result]:
    vpc_config = function.get("VpcConfig") or {}
    subnets = vpc_config.get("SubnetIds") or []
    if not subnets:
        return [passed("network", "not in a VPC: Secrets Manager is reached over Lambda's own network")]
    try:
        vpc, endpoints = _secrets_manager_endpoints(diagnosis, vpc_config)
    except AWS_ERRORS as error:
        return [
            unknown(
                "network",
                f"in a VPC; its endpoints could not be listed: {error_code(error)}",
                "allow the caller ec2:DescribeSubnets and ec2:DescribeVpcEndpoints",
            )
        ]
    if any(e.get("PrivateDnsEnabled") for e in endpoints):
        endpoint = next(e for e in endpoints if e.get("PrivateDnsEnabled"))
        return [
            passed(
                "network",
                f"in {vpc}: interface endpoint {endpoint['VpcEndpointId']} for secretsmanager, "
                "private DNS on",
            )
        ]
    if endpoints and _environment(diagnosis).get("SECRETS_MANAGER_ENDPOINT"):
        return [
            passed(
                "network",
                f"in {vpc}: endpoint {endpoints[0]['VpcEndpointId']} named by SECRETS_MANAGER_ENDPOINT",
            )
        ]
    if endpoints:
        return [
            failed(
                "network",
                f"in {vpc}: endpoint {endpoints[0]['VpcEndpointId']} has private DNS off and the "
                "function sets no SECRETS_MANAGER_ENDPOINT: every step would time out",
                f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {endpoints[0]['VpcEndpointId']} "
                "--private-dns-enabled",
            )
        ]
    return [
        unknown(
            "network",
            f"in {vpc} with no interface endpoint for secretsmanager; a route through a NAT "
            "gateway could not be verified",
            "deploy with CreateSecretsManagerEndpoint=true, or make sure the subnets route to a NAT gateway",
        )
    ]


def _secrets_manager_endpoints(
    diagnosis: Diagnosis, vpc_config: dict[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    """The function's VPC and its usable interface endpoints for Secrets Manager."""
    ec2 = diagnosis.aws.client("ec2")
    subnets = vpc_config["SubnetIds"]
    vpc = vpc_config.get("VpcId") or ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    service = f"com.amazonaws.{diagnosis.aws.region}.secretsmanager"
    found = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "service-name", "Values": [service]}]
    ).get("VpcEndpoints", [])
    return str(vpc), [e for e in found if str(e.get("State", "")).lower() in ("available", "pending")]


def _simulate(
    diagnosis: Diagnosis, role: str, actions: list[str], resource: str, context: list[dict[str, Any]]
) -> dict[str, str]:
    response = diagnosis.aws.client("iam").simulate_principal_policy(
        PolicySourceArn=role, ActionNames=actions, ResourceArns=[resource], ContextEntries=context
    )
    return {r["EvalActionName"]: r["EvalDecision"] for r in response["EvaluationResults"]}


def _role_arn(diagnosis: Diagnosis) -> str:
    return str((diagnosis.function or {}).get("Role", ""))


@needs_function("role permissions")
def check_role(diagnosis: Diagnosis, function: dict[str, Any]) -> list[Result]:
    role = _role_arn(diagnosis)
    tags = [
        {
            "ContextKeyName": f"secretsmanager:ResourceTag/{tag['Key']}",
            "ContextKeyValues": [tag["Value"]],
            "ContextKeyType": "string",
        }
        for tag in (diagnosis.secret or {}).get("Tags", [])
    ]
    try:
        decisions = _simulate(diagnosis, role, list(ROTATION_ACTIONS), diagnosis.arn, tags)
        master = (diagnosis.value or {}).get("masterarn")
        rds_need = None
        if isinstance(master, str) and master:
            actions = ["secretsmanager:GetSecretValue"]
            if _rds_managed(diagnosis, master):
                # The function reads an RDS-managed master's tags to find its database.
                actions.append("secretsmanager:DescribeSecret")
                rds_need = "the master secret is RDS-managed"
            decisions |= {
                f"{action} on the master secret": decision
                for action, decision in _simulate(diagnosis, role, actions, master, []).items()
            }
        rds_need = rds_need or _rds_reader(diagnosis)
        if rds_need:
            decisions |= {
                f"{action} ({rds_need})": decision
                for action, decision in _simulate(diagnosis, role, list(RDS_ACTIONS), "*", []).items()
            }
    except AWS_ERRORS as error:
        return [
            unknown(
                "role permissions",
                f"IAM policy simulation failed: {error_code(error)}",
                "allow the caller iam:SimulatePrincipalPolicy",
            )
        ]
    denied = sorted(action for action, decision in decisions.items() if decision != "allowed")
    name = role.split("/")[-1]
    if denied:
        return [
            failed(
                "role permissions",
                f"role {name} may not: {', '.join(denied)}",
                "tag the secret RotatedBy=<RotationTag>; check the stack's SecretArnPattern, "
                "MasterSecretArnPattern and RdsLookups",
            )
        ]
    return [
        passed(
            "role permissions",
            f"role {name} may {', '.join(a.split(':')[1] for a in ROTATION_ACTIONS)}"
            + (" and read the master secret" if any("master secret" in a for a in decisions) else "")
            + (" and describe RDS databases" if any(a.startswith("rds:") for a in decisions) else ""),
        )
    ]


def _rds_managed(diagnosis: Diagnosis, master: str) -> bool:
    """Whether RDS manages the master secret (its system tags name a database); False when
    the caller may not describe it (the master check of the preflight says more)."""
    try:
        described = diagnosis.aws.client("secretsmanager").describe_secret(SecretId=master)
    except AWS_ERRORS:
        return False
    return any(tag.get("Key") in RDS_MASTER_TAGS for tag in described.get("Tags", []))


def _rds_reader(diagnosis: Diagnosis) -> str | None:
    """Why the function asks RDS about the secret's host, when it does: the secret names its
    RDS database, or its host is a reader endpoint or (RDS says, to the caller) a read
    replica or a cluster's reader instance. None otherwise, or when RDS cannot be asked."""
    value = diagnosis.value or {}
    for key in ("dbClusterIdentifier", "dbInstanceIdentifier"):
        if value.get(key):
            return f"the secret names its RDS database ({key})"
    host = str(value.get("host", "")).lower().rstrip(".")
    if not host.endswith(RDS_DOMAINS):
        return None
    identifier, _, zone = host.partition(".")
    if zone.startswith("cluster-ro-"):
        return "the secret's host is a cluster's reader endpoint"
    if zone.startswith("cluster-"):
        return None
    return _rds_says_reader(diagnosis, identifier)


def _rds_says_reader(diagnosis: Diagnosis, identifier: str) -> str | None:
    """Whether RDS (asked by the caller) lists instance ``identifier`` as a read replica or
    a cluster's reader instance; None when it does not, or cannot be asked."""
    rds = diagnosis.aws.client("rds")
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        if instance.get("ReadReplicaSourceDBInstanceIdentifier"):
            return "the secret's host is a read replica"
        cluster = instance.get("DBClusterIdentifier")
        if not cluster:
            return None
        members = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"]
    except (*AWS_ERRORS, LookupError):
        return None
    writers = {m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")}
    return (
        None
        if instance["DBInstanceIdentifier"] in writers
        else "the secret's host is a cluster's reader instance"
    )


def check_kms(diagnosis: Diagnosis) -> list[Result]:  # noqa: PLR0911 - one return per finding
    if diagnosis.secret is None:
        return [skipped("kms key", "the secret could not be read")]
    key = diagnosis.secret.get("KmsKeyId")
    if not key or str(key).endswith("alias/aws/secretsmanager"):
        return [
            passed(
                "kms key",
                "the AWS managed key aws/secretsmanager: any role of the account may use it "
                "through Secrets Manager",
            )
        ]
    if diagnosis.function is None:
        return [skipped("kms key", "no function to check")]
    kms = diagnosis.aws.client("kms")
    role = _role_arn(diagnosis)
    try:
        metadata = kms.describe_key(KeyId=key)["KeyMetadata"]
        if metadata.get("KeyState") != "Enabled":
            return [
                failed(
                    "kms key",
                    f"key {metadata['KeyId']} is {metadata.get('KeyState')}",
                    "enable the key, or re-encrypt the secret with another",
                )
            ]
        policy = json.loads(kms.get_key_policy(KeyId=metadata["KeyId"], PolicyName="default")["Policy"])
        via = f"secretsmanager.{diagnosis.aws.region}.amazonaws.com"
        decision = _simulate(
            diagnosis,
            role,
            ["kms:Decrypt"],
            metadata["Arn"],
            [{"ContextKeyName": "kms:ViaService", "ContextKeyValues": [via], "ContextKeyType": "string"}],
        )["kms:Decrypt"]
    except AWS_ERRORS as error:
        return [
            unknown(
                "kms key",
                f"could not read the key or its policy: {error_code(error)}",
                "allow the caller kms:DescribeKey, kms:GetKeyPolicy",
            )
        ]
    principals = _decrypt_principals(policy)
    account_root = f"arn:aws:iam::{account_of(metadata['Arn'])}:root"
    if "deny" in principals.get(role, set()) or "deny" in principals.get("*", set()):
        return [
            failed(
                "kms key",
                f"the key policy denies kms:Decrypt to {role.split('/')[-1]}",
                "remove the Deny from the key policy",
            )
        ]
    if "allow" in principals.get(role, set()):
        return [passed("kms key", f"the key policy lets {role.split('/')[-1]} decrypt")]
    if {"allow"} & (principals.get(account_root, set()) | principals.get(account_of(metadata["Arn"]), set())):
        if decision == "allowed":
            return [
                passed(
                    "kms key",
                    f"the key trusts the account's IAM, and role {role.split('/')[-1]} may kms:Decrypt "
                    "via Secrets Manager",
                )
            ]
        return [
            failed(
                "kms key",
                f"role {role.split('/')[-1]} has no IAM permission to kms:Decrypt with key "
                f"{metadata['KeyId']}",
                "deploy the stack with KmsKeyArn set to this key",
            )
        ]
    return [
        failed(
            "kms key",
            f"the key policy lets neither role {role.split('/')[-1]} nor the account's IAM decrypt",
            "add the role to the key policy (kms:Decrypt, kms:GenerateDataKey)",
        )
    ]


def _decrypt_principals(policy: dict[str, Any]) -> dict[str, set[str]]:
    """Principal ARN -> {"allow", "deny"} for statements that cover kms:Decrypt."""
    found: dict[str, set[str]] = {}
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(action in ("kms:Decrypt", "kms:*", "*") for action in actions):
            continue
        principal = statement.get("Principal", {})
        names = principal.get("AWS", []) if isinstance(principal, dict) else principal
        for name in [names] if isinstance(names, str) else names:
            found.setdefault(name, set()).add(str(statement.get("Effect", "")).lower())
    return found


@needs_function("environment")
def check_environment(diagnosis: Diagnosis, function: dict[str, Any]) -> list[Result]:
    env = _environment(diagnosis)
    password = (diagnosis.value or {}).get("password")
    holding = sorted(name for name, value in env.items() if password and value and value == password)
    looking = sorted(
        name
        for name, value in env.items()
        if value and name not in KNOWN_VARIABLES and SECRET_LIKE_NAME.search(name)
    )
    if holding:
        return [
            failed(
                "environment",
                f"{', '.join(holding)} holds the secret's password",
                "remove it: the function reads the secret from Secrets Manager; then rotate",
            )
        ]
    if looking:
        return [
            failed(
                "environment",
                f"{', '.join(looking)} looks like a secret in plain view",
                "keep secrets in Secrets Manager, not in environment variables",
            )
        ]
    return [passed("environment", f"no secret among {len(env)} environment variables")]


# -- the preflight -----------------------------------------------------------------------


@needs_function("preflight")
def check_preflight(diagnosis: Diagnosis, function: dict[str, Any]) -> list[Result]:
    try:
        report = diagnosis.aws.preflight(
            function["FunctionArn"], diagnosis.arn, max_refused=diagnosis.max_refused
        )
    except ToolError as error:
        return [failed("preflight", str(error), "see the function's log; the checks above say where to look")]
    except AWS_ERRORS as error:
        return [
            failed(
                "preflight",
                f"the function could not be invoked: {error_code(error)}",
                "allow the caller lambda:InvokeFunction; a time-out in a VPC means no route to "
                "Secrets Manager",
            )
        ]
    return preflight_results(report)


def preflight_results(report: dict[str, Any]) -> list[Result]:
    """One result per check and capability of a preflight report (its logins in one line)."""
    results = [
        Result(f"preflight: {f['check']}", _STATUS[f.get("ok")], f.get("detail", ""), f.get("fix", ""))
        for f in report.get("checks", [])
    ]
    logins = ", ".join(
        f"{(login.get('labels') or [login.get('version')])[0]} {login.get('outcome')}"
        for login in report.get("logins", [])
    )
    if logins:
        results.append(Result("preflight: logins", "info", logins))
    for capability in report.get("capabilities", []):
        status, detail = _STATUS[capability.get("held")], capability.get("detail", "")
        fix = (
            "give the database user what the reason names, then run doctor again" if status == "fail" else ""
        )
        results.append(Result(f"preflight: {capability['what']}", status, detail, fix))
    return results


_STATUS: dict[bool | None, Status] = {True: "pass", False: "fail", None: "unknown"}
