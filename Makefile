# TrustGate: `make` lists the targets; `make local` runs the whole workflow on this machine; `make test` runs every check.
SHELL := /bin/bash
# pyenv's shim for python3.13 can hang on a clean machine; prefer the interpreter itself.
PYTHON313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
export PATH := $(abspath $(VENV))/bin:$(dir $(PYTHON313)):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: all help setup venv sam-venv system-deps node-deps lint typecheck unit functional e2e fuzz screenshots test validate build local demo bench clean

.DEFAULT_GOAL := help
all: help

# Every target with a `## what it does` comment on its line is listed.
help: ## list these targets (what `make` alone does)
	@echo 'TrustGate. Usage: make TARGET'
	@grep -E '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/trustgate/requirements.txt pyproject.toml cli/pyproject.toml
	test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet --no-deps -e ./cli
	touch $@

venv: $(VENV)/.installed ## create .venv (Python 3.13) with the pinned dependencies and the trustgate CLI

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

# The set-ups are independent and mostly wait on the registries: a clean machine makes them side by side.
setup: ## create both venvs, install the Debian packages and the npm test tools (at once)
	$(MAKE) -j4 --no-print-directory venv sam-venv system-deps node-deps

lint: venv ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pyproject.toml's [tool.mypy] lists what the first run checks; each functions/<name>/app.py is `functions.<name>.app`
# there (explicit_package_bases), so the eight handlers named `app` do not clash.
typecheck: venv ## mypy --strict: the layer, the local stack, the bench, the functions and the tests; the CLI as Python 3.10
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file cli/pyproject.toml

unit: venv node-deps ## the unit tests (pure: no AWS)
	$(VENV)/bin/pytest -m unit

functional: venv ## the functional tests (handlers and the state machine on moto)
	$(VENV)/bin/pytest -m functional

e2e: venv system-deps node-deps ## the end-to-end tests (the local stack over HTTP, the CLI, Chromium)
	$(VENV)/bin/pytest -m e2e

# schemathesis through the local stack's SigV4 gateway, full profile: >= 2,000 cases, new ones every run
# (TRUSTGATE_FUZZ_SEED=<seed> repeats one). `make test` runs the quick, derandomized profile. docs/testing.md
fuzz: venv ## schemathesis through the local stack, full profile
	TRUSTGATE_FUZZ=full $(VENV)/bin/pytest -m fuzz tests/fuzz

# Refresh the README's pictures of the approval page (taken by the browser tests).
screenshots: venv system-deps ## refresh the README's pictures of the approval page
	TRUSTGATE_UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest tests/e2e/test_approval_browser.py

validate: sam-venv ## sam validate --lint
	$(SAM) validate --lint

build: sam-venv ## sam build
	$(SAM) build --parallel

test: setup lint typecheck ## every check: lint, types, all tests, sam validate/build, a quick bench
	$(VENV)/bin/pytest -n auto --dist worksteal -m "not e2e and not fuzz"  # a worker a core: moto tests are CPU-bound
	$(VENV)/bin/pytest -n 2 --dist loadfile -m e2e  # a local stack per worker; each file's tests in order on one
	@# schemathesis parametrizes in the process that runs it, so fuzz runs in one, on one core; sam builds beside it
	set -e; $(VENV)/bin/pytest -m fuzz & fuzz=$$!; \
	  $(MAKE) --no-print-directory validate build || { kill $$fuzz; exit 1; }; \
	  wait $$fuzz
	$(MAKE) bench QUICK=1

local: venv ## run TrustGate on this machine (API on 127.0.0.1:3000) until Ctrl-C
	$(PY) -m trustgate_local

demo: venv ## the narrated walkthrough on a fresh local stack
	$(PY) -m trustgate_local.demo

bench: venv sam-venv ## the benchmark (QUICK=1 for a smoke run)
	$(PY) -m bench $(if $(QUICK),--quick,)

clean: ## remove the venvs, the SAM build and the caches
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
