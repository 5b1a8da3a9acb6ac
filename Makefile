# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint gold bench clean

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/modelmeter analyze torchvision:resnet50

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# Refresh the gold files of rendered output (review the diff before committing).
gold: $(STAMP)
	$(PY) -m pytest tests/render/test_render.py tests/render/test_diff_render.py --update-gold

bench: $(STAMP)
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
