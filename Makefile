# Two commands for a newcomer: `make report` and `make test full` (see README.md; `make test` alone is the suite's fast form).
# Each creates .venv/ when missing, installs the package (editable, with its test extras) and
# registers this environment's Jupyter kernel, then does its job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATASET ?= sample
YEARS   ?= 2021-2025

.PHONY: setup report test full lint format lab notebooks sample browser-deps clean-reports

$(STAMP): pyproject.toml
	@echo "環境を準備しています（初回は数分かかります） / setting up .venv (a few minutes the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (analysis)" >/dev/null
	@touch $@

setup: $(STAMP)

## Run every fiscal-year report, the trends report and the HTML index on the bundled sample.
report: setup
	$(BIN)/python -m analysis run --dataset $(DATASET) --years $(YEARS)

## The house-style check (lint: ruff + mypy), then unit, estimator, notebook (papermill + nbval),
## end-to-end and browser tests, on TEST_WORKERS pytest-xdist workers. --dist loadfile keeps the tests
## of one file, so the cells of one notebook (nbval), on one worker; --no-loadscope-reorder keeps the
## order tests/conftest.py gives (longest files first, tests/file_costs.json).
## `make test`: the suite, every check in its fast form (about 3 minutes on 2 cores).
## `make full`: the long forms of the end-to-end checks (marker `full`: repeated whole runs, every case).
## `make test full`: both, what CI runs (.ci/run). Replication studies (`slow`) stay on demand.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: setup lint browser-deps
	$(PYTEST) -m 'not slow and not full'

full: setup lint browser-deps
	$(PYTEST) -m 'full and not slow'

## House style (pyproject.toml [tool.ruff], [tool.mypy]): lint, format check, type check of src/.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Apply the house style (ruff's fixes and formatter).
format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## JupyterLab on notebooks/ (installs the lab extra on first use).
lab: setup
	@$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,dask,lab]'
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = "0" ] && echo --allow-root)

## Re-execute the committed notebooks in place (their outputs are nbval's reference).
notebooks: setup
	$(BIN)/python -m analysis refresh-notebooks

## Regenerate the fictional sample data (byte-identical to what is committed).
sample: setup
	$(BIN)/python -m analysis sample

## Debian chromium + a Japanese font for the browser test; only as root (as in CI).
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi ipaex; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian chromium and fonts-ipaexfont-gothic for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipaexfont-gothic >/dev/null; \
	else echo "note: chromium not installed and not root; the browser test will be skipped (run 'sudo apt-get install chromium fonts-ipaexfont-gothic' to enable it)"; fi

clean-reports:
	rm -rf reports/*/
