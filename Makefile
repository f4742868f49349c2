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

.PHONY: help venv demo serve test pytest lint format typecheck bench migrate clean

help:
	@echo "make demo       run the whole platform on the embedded default (SQLite, sandboxes)"
	@echo "make test       install everything, then lint, typecheck and run every test suite"
	@echo "make lint | typecheck | format | bench | migrate | clean"

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $(SYNCED)

venv: $(SYNCED)

demo: venv
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

pytest: venv
	$(BIN)/pytest

test: lint typecheck pytest

bench: venv
	$(BIN)/python bench/nearby.py

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
