# TrustGate: `make local` runs the whole workflow on this machine; `make test` runs every check.
SHELL := /bin/bash
# pyenv's shim for python3.13 can hang on a clean machine; prefer the interpreter itself.
PYTHON313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
export PATH := $(abspath $(VENV))/bin:$(dir $(PYTHON313)):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: all venv sam-venv system-deps node-deps lint typecheck unit functional e2e fuzz screenshots test validate build local demo bench clean

all: test

$(VENV)/.installed: requirements-dev.txt layers/trustgate/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# The SAM CLI pins its own boto3, so it lives in a venv of its own.
$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

sam-venv: $(SAM_VENV)/.installed

# The tests' independent IAM evaluator (tests/iam_eval, AGPL, test-time only: never in the Lambda layer).
tests/iam_eval/node_modules/.package-lock.json: tests/iam_eval/package-lock.json
	npm ci --prefix tests/iam_eval --no-audit --no-fund
	touch $@

node-deps: tests/iam_eval/node_modules/.package-lock.json

# Debian packages the browser tests need (CI runs as root on a clean machine).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install -y chromium'"; fi; }

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

unit: venv node-deps
	$(VENV)/bin/pytest -m unit

functional: venv
	$(VENV)/bin/pytest -m functional

e2e: venv system-deps node-deps
	$(VENV)/bin/pytest -m e2e

# schemathesis through the local stack's SigV4 gateway, full profile: >= 2,000 cases, new ones every run
# (TRUSTGATE_FUZZ_SEED=<seed> repeats one). `make test` runs the quick, derandomized profile. docs/testing.md
fuzz: venv
	TRUSTGATE_FUZZ=full $(VENV)/bin/pytest -m fuzz tests/fuzz

# Refresh the README's pictures of the approval page (taken by the browser tests).
screenshots: venv system-deps
	TRUSTGATE_UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest tests/e2e/test_approval_browser.py

validate: sam-venv
	$(SAM) validate --lint

build: sam-venv
	$(SAM) build --parallel

test: venv sam-venv system-deps node-deps lint typecheck
	$(VENV)/bin/pytest
	$(MAKE) validate build
	$(MAKE) bench QUICK=1

local: venv
	$(PY) -m trustgate_local

demo: venv
	$(PY) -m trustgate_local.demo

bench: venv sam-venv
	$(PY) -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
