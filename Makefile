# VAE Explorer: `make run` starts the app, `make test` runs the whole suite (browser tests too).
# Both create .venv and install everything they need on a fresh machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: run test test-all bench soak lint browser-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# MALLOC_ARENA_MAX=2: Streamlit runs each session's script on its own thread, and glibc gives
# threads their own memory arenas, which it does not hand back: with ten sessions the server grew
# from 0.8 to 1.6 GB and stayed there; with two arenas it stays flat (bench/README.md, soak).
# explorer.ui.serve is `streamlit run app.py` with the pages' imports done before the server starts.
run: $(STAMP)
	MALLOC_ARENA_MAX=2 $(VENV)/bin/python -m explorer.ui.serve --server.address $(HOST) --server.port $(PORT)

# Debian's chromium drives the real-browser tests (Playwright's own download is not used).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)); \
	  else echo "browser tests need /usr/bin/chromium: sudo apt-get install chromium"; fi; \
	fi
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || true; \
	fi

test: $(STAMP) browser-deps
	$(PY) -m pytest

# Everything, including the tests marked slow.
test-all: $(STAMP) browser-deps
	$(PY) -m pytest -m "slow or not slow"

# Speed tables (see bench/README.md); not part of `make test`.
bench: $(STAMP) browser-deps
	$(PY) -m explorer.cli data fetch mnist
	$(PY) bench/train_speed.py --epochs 2
	$(PY) bench/limits.py
	$(PY) bench/conv.py
	$(PY) bench/projections.py
	$(PY) bench/explore.py
	$(PY) bench/interaction.py --app
	$(PY) bench/scaling.py
	$(PY) bench/distributed.py --nproc 2
	$(PY) bench/ood.py
	$(PY) bench/idle.py
	$(PY) bench/pages.py

# Many users: one server, 10 concurrent real-browser sessions for 60 s (not part of `make test`).
soak: $(STAMP) browser-deps
	$(PY) bench/soak.py --sessions 10 --seconds 60

# ruff, and the import contract of explorer/ (.importlinter; docs/ARCHITECTURE.md says why).
lint: $(STAMP)
	$(VENV)/bin/ruff check explorer tests bench pages app.py
	PYTHONPATH=. $(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) tests/artifacts .pytest_cache
