# Two commands do everything on a fresh clone:
#   make reproduce   executes every notebook in order, in place, writing figures/ (profile quick;
#                    make reproduce PROFILE=full runs notebook 06's full grid)
#   make test        unit tests + nbval over the notebooks (profile ci)
# The profile (QBDI_PROFILE, qbdi_utils/profile.py) sizes the costly grids; checked cells hold in all.
# and one to play:
#   make explore     the explorer as a web page on http://127.0.0.1:$(PORT) (Voila; Ctrl-C stops it);
#                    MODEL=DIR explores a model of `qbdi train --out DIR` instead of the default one
# Both create .venv and install the package into it when pyproject.toml is newer than the venv.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qbdi-installed
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))
PORT   ?= 8866
PROFILE ?= quick

.PHONY: setup reproduce test bench explore clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11) on PATH, or run: make PYTHON=/path/to/python3.11"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

reproduce: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== executing $$nb (profile $(PROFILE))"; \
		QBDI_PROFILE=$(PROFILE) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=3600 "$$nb" || exit 1; \
	done

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope tests
	QBDI_FIGURES_DIR=$$(mktemp -d) QBDI_PROFILE=ci $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=3600 -p no:cacheprovider notebooks

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# Serves notebooks/explorer.ipynb with Voila on 127.0.0.1 at once and prints the URL, until Ctrl-C.
# MODEL=DIR: that model; else the default model, prepared (trained on first use) while the page shows
# the progress.
MODEL  ?=
explore: $(STAMP)
	@$(BIN)/python -m qbdi_utils.explore --port $(PORT) $(if $(MODEL),--model "$(MODEL)")

clean-cache:
	rm -rf data/cache
