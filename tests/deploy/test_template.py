"""The SAM template: lint-clean, buildable, least privilege, and every rotation function
rotating for real when invoked the way ``sam local invoke`` invokes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devtools.embedded import local_secrets_manager
from devtools.service import STEPS, RotationService
from tests.deploy.template import ROOT, Function, Resolver, functions, load
from tests.engines import (
    Harness,
    MariaDBHarness,
    MongoHarness,
    PostgresHarness,
    RedisHarness,
    RedshiftHarness,
)
from tests.helpers import labels, local_client, store_secret

if TYPE_CHECKING:
    from collections.abc import Callable


# Top-level modules of every engine's driver, by rotators package.
DRIVERS = {
    "postgresql": {"psycopg2"},
    "mysql": {"pymysql", "cryptography", "nacl"},
    "mongodb": {"pymongo", "bson"},
    "redshift": {"redshift_connector"},
    "redis": {"redis"},
}
CACHE_USER_ACTIONS = {
    "elasticache:ModifyUser",
    "elasticache:DescribeUsers",
    "memorydb:UpdateUser",
    "memorydb:DescribeUsers",
}
CACHE_USERS = ",".join(
    [
        "arn:aws:elasticache:us-east-1:123456789012:user:app-user",
        "arn:aws:memorydb:us-east-1:123456789012:user/app",
    ]
)
CACHE_CLUSTER_ACTIONS = {
    "elasticache:DescribeUserGroups",
    "elasticache:DescribeReplicationGroups",
    "memorydb:DescribeACLs",
    "memorydb:DescribeClusters",
}
CACHE_CLUSTERS = ",".join(
    [
        "arn:aws:elasticache:us-east-1:123456789012:usergroup:app-group",
        "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:app-cache",
        "arn:aws:memorydb:us-east-1:123456789012:acl/app-acl",
        "arn:aws:memorydb:us-east-1:123456789012:cluster/app-cluster",
    ]
)
ROTATION_ACTIONS = {
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:ListSecretVersionIds",
}
RDS_ACTIONS = {"rds:DescribeDBInstances", "rds:DescribeDBClusters"}
EXAMPLE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:example-AbCdEf"
ALL_FUNCTIONS = functions(load(), {"ExampleSecretArn": EXAMPLE_SECRET})
TEMPLATE_FUNCTIONS = [f for f in ALL_FUNCTIONS if f.module.startswith("rotators.")]
EXAMPLE = next(f for f in ALL_FUNCTIONS if f.module.startswith("apps."))


def package_of(function: Function) -> str:
    return function.module.split(".")[1]


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_is_clean(sam_cli: str) -> None:
    result = subprocess.run(
        [
            sam_cli,
            "validate",
            "--lint",
            "--region",
            "us-east-1",
            "--template-file",
            str(ROOT / "template.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_json_sets_only_variables_the_template_declares() -> None:
    """SAM drops the others silently: a value there that no function declares does nothing."""
    env_file = json.loads((ROOT / "sam" / "env.json").read_text())
    declared = {f.logical_id: set(f.environment) for f in ALL_FUNCTIONS}
    for section, values in env_file.items():
        names = set().union(*declared.values()) if section == "Parameters" else declared[section]
        assert set(values) <= names, (section, set(values) - names)


def test_the_redis_function_declares_its_managed_user_settings() -> None:
    """The engine reads them by name: a function that does not declare them could not be
    configured (SAM and CloudFormation pass only declared variables)."""
    from rotators.redis.engine import STATUS_ONLY_VARIABLE, USER_WAIT_VARIABLE

    redis = next(f for f in ALL_FUNCTIONS if f.logical_id == "RedisRotationFunction")
    assert {STATUS_ONLY_VARIABLE, USER_WAIT_VARIABLE} <= set(redis.environment)


def test_every_engine_has_a_function() -> None:
    packages = {p.name for p in (ROOT / "rotators").iterdir() if (p / "app.py").exists()}
    assert {package_of(f) for f in TEMPLATE_FUNCTIONS} == packages


def test_every_rotation_function_has_the_reserved_concurrency() -> None:
    """A fleet's scheduled rotations are bounded by ReservedConcurrency on every function."""
    resources = load()["Resources"]
    for function in TEMPLATE_FUNCTIONS:
        properties = resources[function.logical_id]["Properties"]
        assert properties.get("ReservedConcurrentExecutions") == {
            "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
        }, function.logical_id


@pytest.mark.parametrize("function", TEMPLATE_FUNCTIONS, ids=lambda f: f.logical_id)
def test_password_length_cannot_exceed_what_the_engine_accepts(function: Function) -> None:
    """The template's PasswordLength bounds must be lengths every deployed engine takes."""
    import importlib

    app = importlib.import_module(function.module)
    policy = getattr(app, function.attribute).engine.password_policy
    parameter = load()["Parameters"]["PasswordLength"]
    assert policy.min_length <= parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]
    assert parameter["MaxValue"] <= policy.max_length


@pytest.mark.parametrize("function", TEMPLATE_FUNCTIONS, ids=lambda f: f.logical_id)
def test_each_function_carries_its_own_driver_only(built: Path, function: Function) -> None:
    code = built / function.logical_id
    top_level = {p.name for p in code.iterdir()}
    assert DRIVERS[package_of(function)] <= top_level
    others = set().union(*(d for pkg, d in DRIVERS.items() if pkg != package_of(function)))
    assert not others & top_level
    assert (
        not {"boto3", "botocore", "common", "appkit", "devtools", "tests"} & top_level
    )  # runtime / layer / dev only
    assert {p.name for p in (code / "rotators").iterdir()} - {"__pycache__"} == {
        "__init__.py",
        package_of(function),
    }
    layer = built / function.layers[0] / "python"
    assert {"common", "aws_lambda_powertools"} <= {p.name for p in layer.iterdir()}
    assert not set().union(*DRIVERS.values()) & {p.name for p in layer.iterdir()}
    zipped = built / f"{function.logical_id}.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in code.rglob("*"):
            archive.write(path, path.relative_to(code))
    print(f"{function.logical_id}: {zipped.stat().st_size / 1e6:.1f} MB zipped")


@pytest.mark.usefixtures("runtime_python")  # the build compiles with it: none, no bytecode
def test_every_module_ships_its_bytecode_for_the_runtime(built: Path) -> None:
    """Lambda's code directories are read-only: without .pyc files in the build, every
    cold start compiles every module it imports. Checked-hash, so an edited source wins."""
    (runtime,) = {function.runtime for function in ALL_FUNCTIONS}
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    sources = [p for p in built.rglob("*.py") if p.parent.name != "__pycache__"]
    missing = [str(p) for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists()]
    assert sources and not missing, missing[:5]
    flags = {
        int.from_bytes((p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").read_bytes()[4:8], "little")
        for p in sources
    }
    assert flags == {0b11}  # PEP 552: hash-based, checked


# ELF e_machine of each Lambda architecture (the ELF specification's registry).
ELF_MACHINES = {"x86_64": 62, "arm64": 183}
# Functions whose drivers carry compiled modules (MySQL's cryptography, psycopg2, bson).
COMPILED = {"PostgreSQLRotationFunction", "MySQLRotationFunction", "MongoDBRotationFunction"}


def elf_machine(path: Path) -> int | None:
    """The e_machine field of an ELF file's header, or None for any other file."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


@pytest.mark.parametrize("architecture", sorted(ELF_MACHINES))
def test_every_compiled_module_is_built_for_the_architecture(
    architecture: str, request: pytest.FixtureRequest
) -> None:
    """Every ELF file of the build (extension modules and the libraries wheels bundle)
    is for the processor the template's Architecture parameter names."""
    build_dir: Path = request.getfixturevalue("built" if architecture == "x86_64" else "built_arm64")
    machines = {path: elf_machine(path) for path in build_dir.rglob("*") if path.is_file()}
    compiled = {path: machine for path, machine in machines.items() if machine is not None}
    assert {path.relative_to(build_dir).parts[0] for path in compiled} >= COMPILED
    assert all(".so" in path.name for path in compiled), sorted(map(str, compiled))
    wrong = {str(p.relative_to(build_dir)): m for p, m in compiled.items() if m != ELF_MACHINES[architecture]}
    assert not wrong
    sizes = {
        part.name: sum(p.stat().st_size for p in part.rglob("*") if p.is_file())
        for part in sorted(build_dir.iterdir())
        if part.is_dir()
    }
    print(f"{architecture}: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items()))


# The rotation core: what applications never need. The application kit: what rotation never uses.
ROTATION_CORE = {
    "common/rotation.py",
    "common/secretsmanager.py",
    "common/handler.py",
    "common/observability.py",
}
APPLICATION_KIT = {
    "appkit/retrieval.py",
    "appkit/connections.py",
    "appkit/sessions.py",
    "appkit/managed.py",
}
# Shipped by both layers: the RDS resolution of RDS-managed secrets (masters, applications').
SHARED_MODULES = {"common/rds.py", "common/awserrors.py"}


def layer_files(built: Path, layer: str) -> set[str]:
    root = built / layer / "python"
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def test_the_rotation_layer_holds_no_application_code(built: Path) -> None:
    assert {layer for f in TEMPLATE_FUNCTIONS for layer in f.layers} == {"SharedLayer"}
    files = layer_files(built, "SharedLayer")
    assert files >= ROTATION_CORE | SHARED_MODULES
    assert not {path for path in files if path.startswith("appkit/")}
    assert not {"common/retrieval.py", "common/connections.py"} & files  # where they lived before


def test_the_application_layer_holds_no_rotation_core(built: Path) -> None:
    # The example carries no rotation layer, also once SAM merged the Globals in.
    assert EXAMPLE.layers == ["ApplicationLayer"]
    expanded = expanded_template()["Resources"]
    layers = expanded["ExampleReaderFunction"]["Properties"]["Layers"]
    assert [expanded[layer["Ref"]]["Type"] for layer in layers] == ["AWS::Lambda::LayerVersion"]
    assert [layer["Ref"].startswith("ApplicationLayer") for layer in layers] == [True]
    files = layer_files(built, "ApplicationLayer")
    assert files >= APPLICATION_KIT | SHARED_MODULES
    assert {f"rotators/{package}/engine.py" for package in DRIVERS} <= files  # the session code
    assert not ROTATION_CORE & files
    assert not {path for path in files if path.startswith("rotators/") and path.endswith("/app.py")}
    assert not set().union(*DRIVERS.values()) & {path.split("/")[0] for path in files}
    example = {path.name for path in (built / EXAMPLE.logical_id).iterdir()}
    assert {"apps", "psycopg2"} <= example
    assert not {"common", "appkit", "rotators", "pymysql", "pymongo"} & example


def test_the_application_layer_alone_imports_the_kit_and_every_engine(
    built: Path, runtime_python: str
) -> None:
    """Only the layer and the standard library on the path (-S): the layer is complete,
    and importing the kit and the engines loads no module of the rotation core."""
    modules = ["appkit.retrieval", "appkit.connections", "appkit.sessions", "appkit.managed"]
    modules += [f"rotators.{package}.engine" for package in DRIVERS]
    code = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "ours = ('common.', 'appkit.', 'rotators.')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(ours))))"
    )
    result = subprocess.run(
        [runtime_python, "-S", "-c", code, *modules],
        env={"PYTHONPATH": str(built / "ApplicationLayer" / "python"), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout))
    assert set(modules) <= loaded
    assert not {path.removesuffix(".py").replace("/", ".") for path in ROTATION_CORE} & loaded


@pytest.mark.parametrize("function", TEMPLATE_FUNCTIONS, ids=lambda f: f.logical_id)
def test_each_handler_imports_under_the_runtime_python(
    built: Path, runtime_python: str, function: Function
) -> None:
    """Only the function, its layer and the standard library on the path (-S: no site)."""
    path = os.pathsep.join([str(built / function.logical_id), str(built / function.layers[0] / "python")])
    code = (
        "import time, importlib; t = time.perf_counter(); "
        f"module = importlib.import_module({function.module!r}); "
        f"assert callable(getattr(module, {function.attribute!r})); "
        "print(round((time.perf_counter() - t) * 1000))"
    )
    result = subprocess.run(
        [runtime_python, "-S", "-c", code],
        env={"PYTHONPATH": path, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    print(f"{function.logical_id}: handler import {result.stdout.strip()} ms under {function.runtime}")


def expanded_template() -> dict[str, Any]:
    """The template as SAM expands it (Globals merged, one resource per AWS resource),
    with local code replaced by what `sam package` uploads."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    template = load()
    for resource in template["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://artifacts/code.zip"
    expanded: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return expanded


def iam_statements(
    resolved: dict[str, Any], resolver: Resolver, sid_prefix: str = ""
) -> list[dict[str, Any]]:
    """The statements of every IAM role or policy the parameters create."""
    statements = []
    for resource in resolved["Resources"].values():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            properties = resource["Properties"]
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
            documents += [properties["PolicyDocument"]] if "PolicyDocument" in properties else []
            for document in documents:
                statements += document["Statement"]
    return statements


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "MasterSecretArnPattern": "arn:aws:secretsmanager:us-east-1:123456789012:secret:master/*",
            "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abcd",
            "SubnetIds": "subnet-1,subnet-2",
            "SecurityGroupIds": "sg-1",
            "VpcId": "vpc-1",
            "CreateSecretsManagerEndpoint": "true",
            "Tracing": "true",
        },
        {"CacheUserArns": CACHE_USERS},
        {"CacheUserArns": CACHE_USERS, "CacheClusterArns": CACHE_CLUSTERS},
        {"RdsLookups": "false"},
    ],
    ids=["defaults", "master-kms-vpc-traced", "cache-users", "cache-users-and-clusters", "no-rds"],
)
def test_expanded_policies_grant_only_what_rotation_needs(overrides: dict[str, str]) -> None:
    expanded = expanded_template()
    resolver = Resolver(expanded, overrides)
    resolved = resolver.value(expanded)
    statements = [s for s in iam_statements(resolved, resolver) if not s.get("Sid", "").endswith("ItsSecret")]
    granted = set().union(*(actions(s) for s in statements if s.get("Effect") == "Allow"))
    allowed = set(ROTATION_ACTIONS)
    if overrides.get("RdsLookups", "true") == "true":
        allowed |= RDS_ACTIONS
    if overrides.get("KmsKeyArn"):
        allowed |= {"kms:Decrypt", "kms:GenerateDataKey"}
    if overrides.get("CacheUserArns"):
        allowed |= CACHE_USER_ACTIONS
    if overrides.get("CacheClusterArns"):
        allowed |= CACHE_CLUSTER_ACTIONS
    assert granted == allowed  # no GetRandomPassword: passwords are generated in the function
    for statement in statements:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert "*" not in resources, statement.get("Sid")
        if statement.get("Sid") == "RotateTheSecret":
            assert statement["Condition"]["StringEquals"] == {
                "secretsmanager:ResourceTag/RotatedBy": "secrets-rotation"
            }
        if statement.get("Sid") == "ReadMasterSecrets":
            assert actions(statement) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
            assert resources == [overrides["MasterSecretArnPattern"]]
        if statement.get("Sid") == "ChangeCacheUsers":
            # Only the given users, and only when the Redis function's own code asks.
            assert actions(statement) == CACHE_USER_ACTIONS
            assert resources == CACHE_USERS.split(",")
            assert statement["Condition"] == {
                "ArnEquals": {"lambda:SourceFunctionArn": {"Fn::GetAtt": ["RedisRotationFunction", "Arn"]}}
            }
        elif actions(statement) & CACHE_USER_ACTIONS:
            raise AssertionError(f"{statement.get('Sid')} grants cache user actions")
        if statement.get("Sid") == "FindCacheEndpoints":
            # Read-only, only on the named groups, ACLs and clusters, only for the Redis function.
            assert actions(statement) == CACHE_CLUSTER_ACTIONS
            assert resources == CACHE_CLUSTERS.split(",")
            assert statement["Condition"] == {
                "ArnEquals": {"lambda:SourceFunctionArn": {"Fn::GetAtt": ["RedisRotationFunction", "Arn"]}}
            }
        elif actions(statement) & CACHE_CLUSTER_ACTIONS:
            raise AssertionError(f"{statement.get('Sid')} grants cache cluster actions")
        if statement.get("Sid") == "FindRdsDatabases":
            assert actions(statement) == RDS_ACTIONS
            assert {r.rsplit(":", 2)[-2] for r in resources} == {"db", "cluster"}
        if statement.get("Sid") == "UseTheSecretsKey":
            assert resources == [overrides["KmsKeyArn"]]
            assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    roles = [
        r for r in resolved["Resources"].values() if r["Type"] == "AWS::IAM::Role" and "Condition" not in r
    ]
    managed = {
        arn.rpartition("/")[2] for role in roles for arn in role["Properties"].get("ManagedPolicyArns", [])
    }
    traced = overrides.get("Tracing") == "true"
    # Network interfaces only in a VPC; X-Ray's write access only when traced.
    assert managed == {
        "AWSLambdaVPCAccessExecutionRole" if overrides.get("SubnetIds") else "AWSLambdaBasicExecutionRole"
    } | ({"AWSXRayDaemonWriteAccess"} if traced else set())
    modes = {
        r["Properties"].get("TracingConfig", {}).get("Mode")
        for r in resolved["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert modes == {"Active" if traced else "PassThrough"}
    permissions = [
        r["Properties"] for r in resolved["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"
    ]
    assert len(permissions) == len(TEMPLATE_FUNCTIONS)
    for permission in permissions:
        assert permission["Principal"] == "secretsmanager.amazonaws.com"
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["SourceAccount"] == "<AWS::AccountId>"
    endpoints = [r for r in resolved["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    created = [
        r
        for name, r in expanded["Resources"].items()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and resolver.condition(r["Condition"])
    ]
    assert (
        len(created)
        == (1 if overrides.get("CreateSecretsManagerEndpoint") == "true" else 0)
        <= len(endpoints)
    )


def test_example_application_may_read_its_one_secret_only() -> None:
    expanded = expanded_template()
    resolver = Resolver(expanded, {"ExampleSecretArn": EXAMPLE_SECRET})
    role = resolver.value(expanded["Resources"]["ExampleReaderRole"])
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements == [
        {
            "Sid": "ReadItsSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": EXAMPLE_SECRET,
        }
    ]
    assert not Resolver(expanded).condition("HasExample")  # no example unless asked for


def test_failures_reach_people() -> None:
    template = load()
    resources = template["Resources"]
    rule = next(r for r in resources.values() if r["Type"] == "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"]["detail"]["eventName"] == [
        "RotationFailed",
        "RotationAbandoned",
    ]
    alarmed = {
        r["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert alarmed == {f.logical_id for f in TEMPLATE_FUNCTIONS}
    logged = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    assert logged == {f"/aws/lambda/${{{f.logical_id}}}" for f in TEMPLATE_FUNCTIONS}


def start_function(
    built: Path,
    runtime_python: str,
    runtime_boto3: Path,
    function: Function,
    environment: dict[str, str],
    endpoint: str,
) -> subprocess.Popen[str]:
    """The built function under the runtime's Python with only its build output, its layer
    and the runtime's boto3 on the path (-S: no site-packages), fed one event per line."""
    environment = {
        **environment,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(built / function.logical_id),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(
            [
                str(built / function.logical_id),
                str(built / function.layers[0] / "python"),
                str(runtime_boto3),
            ]
        ),
    }
    return subprocess.Popen(
        [
            runtime_python,
            "-S",
            str(ROOT / "devtools" / "lambda_child.py"),
            f"{function.module}:{function.attribute}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def harness_for(function: Function, request: pytest.FixtureRequest) -> Harness:
    """The real server that the function's own engine serves."""
    import importlib

    served = importlib.import_module(function.module).lambda_handler.rotator.engine.engines
    candidates: tuple[tuple[str, Callable[[Any], Harness]], ...] = (
        ("postgres", PostgresHarness),
        ("mariadb", MariaDBHarness),
        ("mongo", MongoHarness),
        ("redshift", RedshiftHarness),
        ("redis_server", RedisHarness),
    )
    for fixture, harness_class in candidates:
        harness = harness_class(request.getfixturevalue(fixture))
        if harness.engine_key in served:
            return harness
    raise AssertionError(f"no test server for {function.logical_id}")


@pytest.mark.parametrize("function", TEMPLATE_FUNCTIONS, ids=lambda f: f.logical_id)
def test_built_function_rotates_as_sam_local_invoke_would(
    built: Path,
    runtime_python: str,
    runtime_boto3: Path,
    function: Function,
    request: pytest.FixtureRequest,
) -> None:
    """The built function and layer under the runtime's Python, its template environment
    plus sam/env.json (as --env-vars), the sam/ event files, moto's server, a real database."""
    harness = harness_for(function, request)
    env_file = json.loads((ROOT / "sam" / "env.json").read_text())
    with local_secrets_manager() as endpoint:
        client, service = local_client(endpoint), RotationService()
        user, password, dbname = harness.new_user()
        arn = store_secret(client, service, f"sam-{user}", harness.secret(user, password, dbname))
        request_ = service.start(arn)
        environment = {
            **function.environment,
            **function.sam_env_vars(env_file),
            "DB_CA_BUNDLE": harness.server.ca_file,
            "SECRETS_MANAGER_ENDPOINT": endpoint,
        }
        child = start_function(built, runtime_python, runtime_boto3, function, environment, endpoint)
        assert child.stdin is not None and child.stdout is not None
        started = time.perf_counter()
        for step in STEPS:
            event = json.loads((ROOT / "sam" / "events" / f"{step}.json").read_text())
            assert event["Step"] == step
            event.update(
                SecretId=arn, ClientRequestToken=request_.token, RotationToken=request_.rotation_token
            )
            child.stdin.write(json.dumps(event) + "\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "ok", f"{step} failed"
        child.stdin.close()
        summary = child.stdout.readline().split()
        child.wait(timeout=30)
        logs = child.stderr.read() if child.stderr else ""
        elapsed = time.perf_counter() - started
        assert labels(client, arn)["AWSCURRENT"] == request_.token
        new = json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    assert harness.can_login(user, new["password"], dbname)
    assert harness.can_login(user, password, dbname) is harness.keeps_previous_password
    assert logs.count("rotation step done") == 4
    assert new["password"] not in logs and password not in logs and request_.rotation_token not in logs
    print(
        f"{function.logical_id}: rotation in {elapsed * 1000:.0f} ms, handler import {summary[3]} ms, "
        f"peak {int(summary[1]) / 1024:.0f} MiB under {function.runtime}"
    )


def test_example_application_serves_across_a_rotation_from_its_build(
    built: Path,
    runtime_python: str,
    runtime_boto3: Path,
    postgres: Any,
) -> None:
    """The example reads its secret at initialisation, serves, and keeps serving after a
    rotation changed the password (new sessions meet the refused password and refresh)."""
    from rotators.postgresql.engine import PostgresEngine
    from tests.helpers import handler_for

    harness = PostgresHarness(postgres)
    with local_secrets_manager() as endpoint:
        client, service = local_client(endpoint), RotationService()
        user, password, dbname = harness.new_user()
        arn = store_secret(client, service, f"example-{user}", harness.secret(user, password, dbname))
        environment = {**EXAMPLE.environment, "DB_SECRET_ID": arn, "DB_CA_BUNDLE": postgres.ca_file}
        child = start_function(built, runtime_python, runtime_boto3, EXAMPLE, environment, endpoint)
        assert child.stdin is not None and child.stdout is not None

        def invoke() -> str:
            child.stdin.write("{}\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
            return child.stdout.readline().strip()  # type: ignore[union-attr]

        assert invoke() == "ok"
        service.rotate(handler_for(PostgresEngine(), client, DB_CA_BUNDLE=postgres.ca_file), arn)
        postgres.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (user,))
        assert invoke() == "ok"  # its session was killed and its cached password is refused
        child.stdin.close()
        child.wait(timeout=30)
    assert not harness.can_login(user, password, dbname)
