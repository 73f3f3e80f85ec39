# reactcli: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv/ (if needed), install everything (torch CPU/CUDA wheel, an ffmpeg binary via
# imageio-ffmpeg, all Python deps) and then run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is installed first and pinned: a bare `torch` requirement would pull the CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-output
PYTEST_ARGS ?=

.PHONY: setup demo test test-all bench clean help

help:
	@echo "make demo   - set up .venv and run the end-to-end demo on the synthetic corpus"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - run the benchmarks (on demand; prints ratios)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $$(test -d /opt/wheels && echo --find-links /opt/wheels)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "torch-fidelity==0.4.0"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/reactcli demo --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -rs $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not gpu" $(PYTEST_ARGS)

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
