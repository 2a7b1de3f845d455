# The lab's entry points. Every target is idempotent: run them as often as you like.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SIZE    ?= small

.PHONY: setup run test test-fast lint lab notebooks down doctor clean

setup:                     ## Debian packages (when root), .venv, labkit, pymilvus 1.1.2
	$(PY) labkit/bootstrap.py

run: setup                 ## the main job: every notebook in order; outputs, history, report, html/ in artifacts/
	$(BIN)/labkit run --size $(SIZE) $(RUN_ARGS)

test: setup                ## the whole test suite: lint, unit, integration (real services), notebooks at ci size
	$(BIN)/ruff check labkit tests notebooks
	$(BIN)/pytest -q

test-fast: setup           ## unit tests only
	$(BIN)/pytest -q tests/unit

lab: setup                 ## JupyterLab on the notebooks (127.0.0.1; prints the URL with its token; works as root)
	$(BIN)/python -m labkit.nb.jupyter

notebooks: setup           ## rewrite each notebooks/NN_*.ipynb from its jupytext source NN_*.py (outputs stripped)
	$(BIN)/python -m labkit.nb.pairs

down:                      ## stop every lab process and unmount (add PURGE=1 to delete data)
	$(BIN)/labkit down $(if $(PURGE),--purge,)

doctor: setup
	$(BIN)/labkit doctor

clean: down
	rm -rf artifacts .lab
