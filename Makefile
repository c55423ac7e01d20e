# Set-up is two commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTERNAL ?= ../shared/external/onet_dev.tsv
# Fixed build time, so `make model` gives the same bytes for the same corpus and seed.
SOURCE_DATE_EPOCH ?= 1767225600
export SOURCE_DATE_EPOCH

.PHONY: install demo test model evaluate bench fuzz clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: install  ## label the sample job-duties sheet with the shipped model
	$(BIN)/bpo-classify label datasets/sample_job_duties.csv --text-column duty

test: install
	$(BIN)/python -m pytest -q

model: install  ## rebuild the shipped default model from the corpus (deterministic)
	$(BIN)/bpo-classify train --seed 0 --out bpo_classify/data/default_model.bpoc

evaluate: install  ## cross-validated and external scores of the shipped model
	$(BIN)/python -m bpo_classify evaluate $(if $(wildcard $(EXTERNAL)),--data $(EXTERNAL))

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
