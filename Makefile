# Two commands for a fresh machine with Python 3.11:
#   make run   - set up .venv and start the portal on http://localhost:8501 (SQLite, sandbox partners, built-in sign-in)
#   make test  - set up .venv with the dev requirements and run the whole suite
# and for the inner loop:
#   make test-fast - the same checks and the suite without the tests marked `slow` (well under 2 minutes)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(BIN)/streamlit run app.py --server.address localhost --server.port 8501

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/quotes.py
	$(BIN)/python benchmarks/page.py
	$(BIN)/python benchmarks/auth.py
	$(BIN)/python benchmarks/recoveries.py
	$(BIN)/python benchmarks/risk.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
