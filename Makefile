# Two commands set SignSeek up on a fresh machine:
#   make run    installs into .venv and serves the demo (UI + API) on $PORT (default 7860)
#   make test   installs into .venv (with training and test extras) and runs the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 7860
# Every install is constrained to the versions CI tested (constraints.txt; `make lock` rewrites it).
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt
export GRADIO_ANALYTICS_ENABLED = False
export HF_HUB_OFFLINE = 1

.PHONY: run test install install-dev system-deps lint bench explorer clean lock tflite tflite-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip

install: $(PY)
	$(PIP_INSTALL) -e .

install-dev: $(PY) system-deps
	$(PIP_INSTALL) -e ".[dev]"

# Debian packages the tests use: Chromium for the browser tests, ffmpeg to make webm/y4m fixtures,
# PostgreSQL for the shared reference store's tests (they run initdb/postgres from
# /usr/lib/postgresql/*/bin as an unprivileged user on a temp directory; no service is started).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  command -v chromium >/dev/null && command -v ffmpeg >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends chromium ffmpeg postgresql; }; \
	else echo "system-deps: not root or no apt-get; browser and PostgreSQL tests will say why they skip"; fi

run: install
	PORT=$(PORT) $(PY) app.py

test: install-dev
	$(PY) -m ruff check .
	$(PY) -m pytest

explorer: install
	$(PIP_INSTALL) -e ".[explorer,train]"
	$(PY) -m streamlit run explorer/app.py --server.headless=true --browser.gatherUsageStats=false

bench: install-dev
	$(PY) -m benchmarks

# TFLite export (fp32 + int8) of the bundle's encoder and hands-only classifier, verified with the
# LiteRT interpreter against ONNX Runtime, shipped in models/ when every check passes. The converter
# (litert-torch + CPU torch + ai-edge-quantizer + ai-edge-litert, pinned in requirements-tflite.txt)
# lives in its own venv so it never touches the main one's pins.
TFLITE_VENV ?= .venv-litert
BUNDLE ?= models

$(TFLITE_VENV)/installed: requirements-tflite.txt
	$(PYTHON) -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/python -m pip install -q -r requirements-tflite.txt
	date > $@

tflite-venv: $(TFLITE_VENV)/installed

tflite: install tflite-venv
	$(PY) -m trainer.tflite --bundle $(BUNDLE) --python $(TFLITE_VENV)/bin/python

# After a dependency change: pin what the dev venv now holds (run `make test` first, then commit).
lock: install-dev
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable --all | sed -E 's/\+cpu$$//' | grep -v '^setuptools=='; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
