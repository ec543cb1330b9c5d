# Two commands for a newcomer: `make run` and `make test`. Everything else is set-up.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null)
SAMPLE_ENTERPRISES ?= 2000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run test test-all test-spark ui lint bench clean

$(BIN)/risk: pyproject.toml uv.lock
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet uv; fi
	uv sync --frozen --extra dev --compile-bytecode
	@touch $(BIN)/risk

setup: $(BIN)/risk

## run: set up, generate a sample landing directory if there is none, refresh the warehouse
run: setup
	@mkdir -p "$(DAGSTER_HOME)"
	@landing="$${RISK_LANDING_DIR:-data/landing}"; \
	if [ ! -d "$$landing" ] || [ -z "$$(ls -A "$$landing" 2>/dev/null)" ]; then \
	  echo "No landing data in $$landing: generating $(SAMPLE_ENTERPRISES) synthetic enterprises"; \
	  $(BIN)/risk generate --enterprises $(SAMPLE_ENTERPRISES) --seed 42 --out "$$landing"; \
	fi; \
	meta="$${landing%/}_truth/meta.json"; \
	if [ -z "$$RISK_AS_OF" ] && [ -f "$$meta" ]; then \
	  export RISK_AS_OF="$$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["snapshot_date"])' "$$meta")"; \
	  echo "As of $$RISK_AS_OF, the generated sample's snapshot date ($$meta; RISK_AS_OF=... to change)"; \
	fi; \
	$(BIN)/risk refresh

## test: set up and run the whole test suite
test: setup
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project/models --processes 2
	@# three workers on two cores: the suite leaves a core idle while processes start (README, Tests)
	$(BIN)/pytest -q -n 3 --dist loadfile --no-loadscope-reorder

## test-all: the whole suite including the slow end-to-end tests (kill -9 at every step)
test-all: setup
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project/models --processes 2
	$(BIN)/pytest -q -m "not spark"

## test-spark: opt-in, not part of `make test`: the dbt project on Apache Spark (dbt-spark,
## pyspark, Java 17) against DuckDB on the contract examples. Adds the extra `spark` to .venv
## (tests marked `spark` stay deselected in `make test` either way).
test-spark:
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet uv; fi
	@command -v java >/dev/null || { echo "make test-spark needs Java 17 (java not on PATH)"; exit 2; }
	uv sync --frozen --extra dev --extra spark --compile-bytecode
	$(BIN)/pytest -q -m spark tests/test_spark.py

## ui: the Dagster UI on http://127.0.0.1:3000
ui: setup
	@$(BIN)/python -c "from assets.core.settings import ensure_dagster_home as e; e()"
	@$(BIN)/python -c "from assets.core.dbt_project import prepare_dbt_project as p; p()"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: setup
	$(BIN)/python benchmarks/bench_ingest.py --enterprises 10000

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs .pytest_cache
