# Forecourt — the verbs people type. The Makefile bootstraps its own tools and virtualenv.
SHELL := /bin/bash
PY ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SYNCED := $(VENV)/.synced

# Local services used by the test suites (CI requires them; set empty to skip locally).
export FORECOURT_TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
export FORECOURT_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export FORECOURT_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/

.PHONY: help venv demo serve test pytest lint format typecheck bench migrate clean app app-client \
	admin admin-client

help:
	@echo "make demo       run the whole platform on the embedded default (SQLite, sandboxes)"
	@echo "make test       install everything, then lint, typecheck and run every test suite"
	@echo "make app        build the driver app (web/app: H5 at /app, WeChat mini-program) with CI=1"
	@echo "make app-client regenerate web/app's typed API client after an API change"
	@echo "make admin      build the back-office console (web/admin, served at /admin)"
	@echo "make admin-client regenerate web/admin's API types after an API change"
	@echo "make lint | typecheck | format | bench | migrate | clean"

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $(SYNCED)

venv: $(SYNCED)

# Driver app (web/app, uni-app): npm ci when node_modules is missing or the lock changed; the
# typed API client must match the backend's OpenAPI document (drift fails the build); then the
# H5 build (served at /app) and the mp-weixin build. CI=1 stops uni's online update check.
APP := web/app
APP_BIN := node_modules/.bin
APP_STAMP := $(APP)/node_modules/.forecourt-installed
OPENAPI_JSON := $(APP)/.openapi.json

$(APP_STAMP): $(APP)/package.json $(APP)/package-lock.json
	cd $(APP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(OPENAPI_JSON): venv FORCE
	@$(BIN)/python -W ignore -c 'import json; from forecourt.app import create_app; print(json.dumps(create_app().openapi()))' > $@.tmp
	@mv $@.tmp $@

app: $(APP_STAMP) $(OPENAPI_JSON)
	cd $(APP) && node scripts/gen-api.mjs --check .openapi.json
	cd $(APP) && $(APP_BIN)/vue-tsc --noEmit -p tsconfig.json
	cd $(APP) && CI=1 $(APP_BIN)/uni build
	cd $(APP) && CI=1 $(APP_BIN)/uni build -p mp-weixin

app-client: $(APP_STAMP) $(OPENAPI_JSON)
	cd $(APP) && node scripts/gen-api.mjs .openapi.json
	cd $(APP) && $(APP_BIN)/vue-tsc --noEmit -p tsconfig.json

# Back-office console (web/admin, Vue 3 + Vite + Element Plus + ECharts, served at /admin):
# npm ci when node_modules is missing or the lock changed; its API types must match the
# backend's OpenAPI document (drift fails the build); then vue-tsc and the Vite build.
ADMIN := web/admin
ADMIN_STAMP := $(ADMIN)/node_modules/.forecourt-installed

$(ADMIN_STAMP): $(ADMIN)/package.json $(ADMIN)/package-lock.json
	cd $(ADMIN) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

ADMIN_GEN := node ../app/scripts/gen-api.mjs --name admin --out src/api/schema.d.ts

admin: $(APP_STAMP) $(ADMIN_STAMP) $(OPENAPI_JSON)
	cd $(ADMIN) && $(ADMIN_GEN) --check $(abspath $(OPENAPI_JSON))
	cd $(ADMIN) && $(APP_BIN)/vue-tsc --noEmit -p tsconfig.json
	cd $(ADMIN) && $(APP_BIN)/vite build --logLevel warn

admin-client: $(APP_STAMP) $(ADMIN_STAMP) $(OPENAPI_JSON)
	cd $(ADMIN) && $(ADMIN_GEN) $(abspath $(OPENAPI_JSON))
	cd $(ADMIN) && $(APP_BIN)/vue-tsc --noEmit -p tsconfig.json

FORCE:

demo: venv app admin
	$(BIN)/forecourt demo

serve: venv
	$(BIN)/forecourt serve

migrate: venv
	$(BIN)/forecourt db upgrade

lint: venv
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

format: venv
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

typecheck: venv
	$(BIN)/mypy src tests bench

pytest: venv app admin
	$(BIN)/pytest

test: lint typecheck pytest

bench: venv
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python bench/nearby.py

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
	rm -rf $(APP)/node_modules $(APP)/dist $(OPENAPI_JSON) artifacts/web
	rm -rf $(ADMIN)/node_modules $(ADMIN)/dist
