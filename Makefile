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

.PHONY: setup system-deps test lint typecheck check rotate local-invoke bench clean sam-cli

$(STAMP): requirements.txt requirements-dev.txt
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
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

## The main job: a real rotation on a throwaway PostgreSQL and a local Secrets Manager.
rotate: setup
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
	$(BIN)/python -m devtools.bench_scale
	$(BIN)/python -m devtools.fleet

clean:
	rm -rf $(VENV) $(SAM_VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam

# --- sam build (BuildMethod: makefile): SAM calls these with ARTIFACTS_DIR set. -----------
# The shared code and Powertools go into one layer; each function carries only its
# handler package and its own driver, as wheels for the Lambda runtime (not this machine's).
LAMBDA_PYTHON ?= 3.13
LAMBDA_PLATFORM ?= manylinux2014_x86_64
LAMBDA_PIP := python3 -m pip install --quiet --no-compile --only-binary=:all: \
	--implementation cp --python-version $(LAMBDA_PYTHON) --platform $(LAMBDA_PLATFORM)
build-SharedLayer:
	mkdir -p $(ARTIFACTS_DIR)/python $(ARTIFACTS_DIR)/certs
	cp -r common $(ARTIFACTS_DIR)/python/
	find certs -maxdepth 1 -name '*.pem' -exec cp {} $(ARTIFACTS_DIR)/certs/ \;
	$(LAMBDA_PIP) -r common/requirements.txt -t $(ARTIFACTS_DIR)/python
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +

# $(call build-function,<package under rotators/>)
define build-function
	mkdir -p $(ARTIFACTS_DIR)/rotators
	cp rotators/__init__.py $(ARTIFACTS_DIR)/rotators/
	cp -r rotators/$(1) $(ARTIFACTS_DIR)/rotators/
	$(LAMBDA_PIP) $(PIP_FLAGS_$(1)) -r rotators/$(1)/requirements.txt -t $(ARTIFACTS_DIR)
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +
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
# common/ those import; never the rotation core (rotation.py, secretsmanager.py,
# handler.py, observability.py) and no driver. tests/deploy checks both layers' contents
# and imports every module of this one from the layer alone.
APP_COMMON := __init__ clients engine errors passwords redaction secret settings tls
build-ApplicationLayer:
	mkdir -p $(ARTIFACTS_DIR)/python/common $(ARTIFACTS_DIR)/certs
	cp -r appkit $(ARTIFACTS_DIR)/python/
	rm $(ARTIFACTS_DIR)/python/appkit/requirements.txt
	cp $(APP_COMMON:%=common/%.py) $(ARTIFACTS_DIR)/python/common/
	find rotators -name '*.py' ! -name app.py -exec cp --parents {} $(ARTIFACTS_DIR)/python/ \;
	find certs -maxdepth 1 -name '*.pem' -exec cp {} $(ARTIFACTS_DIR)/certs/ \;
	$(LAMBDA_PIP) -r appkit/requirements.txt -t $(ARTIFACTS_DIR)/python
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +

# The example application: its handler package and its driver (the layer has the rest).
build-ExampleReaderFunction:
	mkdir -p $(ARTIFACTS_DIR)/apps
	cp apps/__init__.py $(ARTIFACTS_DIR)/apps/
	cp -r apps/reader $(ARTIFACTS_DIR)/apps/
	$(LAMBDA_PIP) -r rotators/postgresql/requirements.txt -t $(ARTIFACTS_DIR)
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +
