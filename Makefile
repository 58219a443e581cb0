# Two commands for a fresh machine with Python 3.11:
#   make run   - set up .venv and start the portal on http://localhost:8501 (SQLite, sandbox partners, built-in sign-in)
#   make test  - set up .venv with the dev requirements and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

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

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/quotes.py
	$(BIN)/python benchmarks/page.py
	$(BIN)/python benchmarks/auth.py
	$(BIN)/python benchmarks/recoveries.py
	$(BIN)/python benchmarks/risk.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
