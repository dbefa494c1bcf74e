# Every command a reviewer runs. Each target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# sam build needs no runtime Python (the build is a Makefile); the tests import each
# built handler under the runtime's Python, which pyenv provides here.
export PYENV_VERSION ?= 3.11.7:3.12.1:3.13.0

.PHONY: setup system-deps test lint typecheck check rotate local-invoke bench clean sam-cli build

$(STAMP): requirements.txt requirements-dev.txt
	scripts/install-system-deps python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

system-deps:
	scripts/install-system-deps

# SAM CLI pins its own boto3: it gets a virtualenv of its own.
$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)

sam-cli: $(SAM)

setup: system-deps $(STAMP) $(SAM)

## The tests: unit tests and real-database tests (servers started by the suite).
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

## The main job: a real rotation on a throwaway PostgreSQL and a local Secrets Manager.
## With ARGS="--secret-id ..." it follows a deployed secret instead: the virtualenv is
## all that needs (no database packages, no root).
rotate: $(STAMP)
	$(if $(findstring --secret-id,$(ARGS)),,scripts/install-system-deps)
	$(BIN)/python -m devtools.rotate $(ARGS)

## The same rotation run by SAM CLI itself: `sam local invoke` of each step in a container
## (a Docker daemon of its own, the Lambda Python image built locally and cached).
local-invoke: setup
	$(BIN)/python -m devtools.local_invoke $(ARGS)

bench: setup
	$(BIN)/python -m devtools.bench $(ARGS)
	$(BIN)/python -m devtools.bench_retrieval
	$(BIN)/python -m devtools.bench_dual
	$(BIN)/python -m devtools.bench_rds
	$(BIN)/python -m devtools.bench_coldstart
	$(BIN)/python -m devtools.bench_scale
	$(BIN)/python -m devtools.fleet

clean:
	rm -rf $(VENV) $(SAM_VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam

# --- sam build (BuildMethod: makefile): SAM calls these with ARTIFACTS_DIR set. -----------
# The shared code and Powertools go into one layer; each function carries only its
# handler package and its own driver, as wheels for the Lambda runtime (not this machine's).
#
# The architecture: SAM CLI (1.170) passes a makefile build nothing but ARTIFACTS_DIR, so
# it comes from the environment, LAMBDA_ARCHITECTURE (x86_64 or arm64), and must match
# the template's Architecture parameter: `make build LAMBDA_ARCHITECTURE=arm64` sets both.
# Under a plain `sam build` it has no default: a default would package x86_64 wheels for
# `sam build --parameter-overrides Architecture=arm64` without a word. Each artifact
# records what it was built for (lambda-architecture); `make build` then pins the built
# template's Architecture to it (devtools/pin_architecture.py), so a plain `sam deploy`
# deploys what was built and an override to the other architecture is refused.
LAMBDA_PYTHON ?= 3.13
ifeq ($(origin ARTIFACTS_DIR),undefined)
LAMBDA_ARCHITECTURE ?= x86_64
endif
LAMBDA_PLATFORM_x86_64 := manylinux2014_x86_64
LAMBDA_PLATFORM_arm64 := manylinux2014_aarch64
LAMBDA_PLATFORM = $(if $(LAMBDA_ARCHITECTURE),$(or $(LAMBDA_PLATFORM_$(LAMBDA_ARCHITECTURE)),$(error \
	LAMBDA_ARCHITECTURE must be x86_64 or arm64, not "$(LAMBDA_ARCHITECTURE)")),$(error \
	LAMBDA_ARCHITECTURE is not set: SAM does not tell a makefile build the template's \
	Architecture, and the wheels must match it. Run `make build [LAMBDA_ARCHITECTURE=arm64]`, \
	or `LAMBDA_ARCHITECTURE=<same as Architecture> sam build`))
# pip for the wheels: a virtualenv's of this repository when there is one (Debian's
# python3 has no pip module without python3-pip).
LAMBDA_PIP_PYTHON ?= $(firstword $(wildcard $(SAM_VENV)/bin/python $(VENV)/bin/python) python3)
LAMBDA_PIP = $(LAMBDA_PIP_PYTHON) -m pip install --quiet --no-compile --only-binary=:all: \
	--implementation cp --python-version $(LAMBDA_PYTHON) --platform $(LAMBDA_PLATFORM)

# Bytecode for the runtime's Python, compiled at build time when that Python is at hand:
# Lambda's code directories are read-only, so a function shipped without it compiles
# every module it imports at each cold start (~30 ms of CPU for a rotation function).
# Checked-hash .pyc files stay correct if a source file is edited after the build.
LAMBDA_BYTECODE_PYTHON ?= $(shell python$(LAMBDA_PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)
define compile-bytecode
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +
	$(if $(LAMBDA_BYTECODE_PYTHON),$(LAMBDA_BYTECODE_PYTHON) -m compileall -q -j0 \
		--invalidation-mode checked-hash $(ARTIFACTS_DIR) >/dev/null,\
		@echo "no python$(LAMBDA_PYTHON) on PATH: no bytecode shipped (each cold start compiles)")
endef

# sam build for one architecture (the default x86_64, or LAMBDA_ARCHITECTURE=arm64).
build: $(SAM)
	LAMBDA_ARCHITECTURE=$(LAMBDA_ARCHITECTURE) $(SAM) build --parameter-overrides Architecture=$(LAMBDA_ARCHITECTURE)
	$(SAM_VENV)/bin/python -m devtools.pin_architecture .aws-sam/build $(LAMBDA_ARCHITECTURE)

# What an artifact's wheels were built for (see LAMBDA_ARCHITECTURE above).
define record-architecture
	echo $(LAMBDA_ARCHITECTURE) > $(ARTIFACTS_DIR)/lambda-architecture
endef

build-SharedLayer:
	mkdir -p $(ARTIFACTS_DIR)/python $(ARTIFACTS_DIR)/certs
	cp -r common $(ARTIFACTS_DIR)/python/
	find certs -maxdepth 1 -name '*.pem' -exec cp {} $(ARTIFACTS_DIR)/certs/ \;
	$(LAMBDA_PIP) -r common/requirements.txt -t $(ARTIFACTS_DIR)/python
	$(compile-bytecode)
	$(record-architecture)

# $(call build-function,<package under rotators/>)
define build-function
	mkdir -p $(ARTIFACTS_DIR)/rotators
	cp rotators/__init__.py $(ARTIFACTS_DIR)/rotators/
	cp -r rotators/$(1) $(ARTIFACTS_DIR)/rotators/
	$(LAMBDA_PIP) $(PIP_FLAGS_$(1)) -r rotators/$(1)/requirements.txt -t $(ARTIFACTS_DIR)
	$(compile-bytecode)
	$(record-architecture)
endef

# redshift_connector depends on boto3 (the runtime's) and on IdP plugins' packages.
PIP_FLAGS_redshift := --no-deps

build-PostgreSQLRotationFunction:
	$(call build-function,postgresql)

build-MySQLRotationFunction:
	$(call build-function,mysql)

build-MongoDBRotationFunction:
	$(call build-function,mongodb)

build-RedshiftRotationFunction:
	$(call build-function,redshift)

build-RedisRotationFunction:
	$(call build-function,redis)

# The application layer: appkit/ (what functions that *use* a rotated secret import), the
# engines' session code (rotators/<engine>/ without the handlers) and the modules of
# common/ those import (rds.py too: appkit completes RDS-managed secrets with the rotation
# side's own resolution); never the rotation core (rotation.py, secretsmanager.py,
# handler.py, observability.py) and no driver. tests/deploy checks both layers' contents
# and imports every module of this one from the layer alone.
APP_COMMON := __init__ awserrors clients deadline engine errors passwords rds redaction secret settings tls
build-ApplicationLayer:
	mkdir -p $(ARTIFACTS_DIR)/python/common $(ARTIFACTS_DIR)/certs
	cp -r appkit $(ARTIFACTS_DIR)/python/
	rm $(ARTIFACTS_DIR)/python/appkit/requirements.txt
	cp $(APP_COMMON:%=common/%.py) $(ARTIFACTS_DIR)/python/common/
	find rotators -name '*.py' ! -name app.py -exec cp --parents {} $(ARTIFACTS_DIR)/python/ \;
	find certs -maxdepth 1 -name '*.pem' -exec cp {} $(ARTIFACTS_DIR)/certs/ \;
	$(LAMBDA_PIP) -r appkit/requirements.txt -t $(ARTIFACTS_DIR)/python
	$(compile-bytecode)
	$(record-architecture)

# The example application: its handler package and its driver (the layer has the rest).
build-ExampleReaderFunction:
	mkdir -p $(ARTIFACTS_DIR)/apps
	cp apps/__init__.py $(ARTIFACTS_DIR)/apps/
	cp -r apps/reader $(ARTIFACTS_DIR)/apps/
	$(LAMBDA_PIP) -r rotators/postgresql/requirements.txt -t $(ARTIFACTS_DIR)
	$(compile-bytecode)
	$(record-architecture)
