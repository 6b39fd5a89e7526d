# Two commands on a fresh machine: `make run` starts the app, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/chrysopedia

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/search.py
	$(BIN)/python bench/stream_render.py
	$(BIN)/python bench/chat_fallback.py
	$(BIN)/python bench/bench_history.py

clean:
	rm -rf $(VENV) build *.egg-info
