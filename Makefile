# leadscore: the two commands are `make demo` and `make test`; each creates .venv and
# installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint format train score serve-mlflow clean help

help:
	@echo "make demo   - install, generate the synthetic CRM, train, score, show the top leads"
	@echo "make test   - install dev extras, lint, run the whole test suite"
	@echo "make lint   - ruff"
	@echo "make clean  - remove outputs (data, mlflow.db, mlartifacts, .prefect)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/leadscore demo

train: $(VENV)/.installed
	$(BIN)/leadscore train

score: $(VENV)/.installed
	$(BIN)/leadscore score

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

serve-mlflow: $(VENV)/.installed
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf data/synthetic data/scores data/*.db mlflow.db mlartifacts mlruns .prefect .mplconfig
