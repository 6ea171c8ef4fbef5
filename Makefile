# Two commands set SignSeek up on a fresh machine:
#   make run    installs into .venv and serves the demo (UI + API) on $PORT (default 7860)
#   make test   installs into .venv (with training and test extras) and runs the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 7860
export GRADIO_ANALYTICS_ENABLED = False
export HF_HUB_OFFLINE = 1

.PHONY: run test install install-dev system-deps lint bench explorer clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e .

install-dev: $(PY) system-deps
	$(PY) -m pip install -q -e ".[dev]"

# Debian packages the tests use: Chromium for the browser tests, ffmpeg to make webm/y4m fixtures.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  command -v chromium >/dev/null && command -v ffmpeg >/dev/null || \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends chromium ffmpeg; }; \
	else echo "system-deps: not root or no apt-get; browser tests will say why they skip"; fi

run: install
	PORT=$(PORT) $(PY) app.py

test: install-dev
	$(PY) -m ruff check .
	$(PY) -m pytest

explorer: install
	$(PY) -m pip install -q -e ".[explorer,train]"
	$(PY) -m streamlit run explorer/app.py --server.headless=true --browser.gatherUsageStats=false

bench: install-dev
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
