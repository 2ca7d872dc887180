# One command installs and runs the main job (`make demo`), one installs and tests (`make test`).
# Each creates the project's own virtual environment in .venv from the locked constraints.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := build/demo
SEED   ?= 7
AS_OF  ?= 2026-06-30

.PHONY: install demo test lint sample lock clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,server]"
	touch $(STAMP)

# The main job on the embedded default: a synthetic labelled portfolio, validated and described;
# a model trained on it, evaluated against the scorecard and the Bayes limit, registered in
# MLflow (SQLite file mlflow.db in this folder; set MLFLOW_TRACKING_URI for a shared server) and
# promoted to champion; then the daily batch job: the sample portfolio scored from the registry.
demo: $(STAMP)
	mkdir -p $(DEMO)
	$(BIN)/recoverscore generate --rows 200000 --seed $(SEED) --as-of $(AS_OF) --out $(DEMO)/history.parquet
	$(BIN)/recoverscore validate $(DEMO)/history.parquet
	$(BIN)/recoverscore describe $(DEMO)/history.parquet
	$(BIN)/recoverscore train --data $(DEMO)/history.parquet --out $(DEMO)/model
	$(BIN)/recoverscore promote challenger
	$(BIN)/recoverscore models
	$(BIN)/recoverscore score --model champion --input data/synthetic/sample.csv --output $(DEMO)/scored.csv \
	  --experiment configs/experiment.yaml

# Lint, then the test suite. pytest exits 5 when it collected no test: that is a failure too.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks notebooks

# Regenerate the committed sample in data/synthetic/ (tests check it is reproducible).
sample: $(STAMP)
	$(BIN)/recoverscore generate --rows 5000 --seed 20260630 --as-of 2026-06-30 --out data/synthetic/sample.parquet
	$(BIN)/recoverscore generate --rows 5000 --seed 20260630 --as-of 2026-06-30 --out data/synthetic/sample.csv

# Re-resolve the dependency lock from pyproject.toml's ranges.
lock:
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/python -m pip install --quiet --upgrade pip
	build/lockenv/bin/python -m pip install --quiet ".[test,server]"
	build/lockenv/bin/python -m pip freeze --exclude recoverscore > constraints.txt

clean:
	rm -rf $(VENV) build
