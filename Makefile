# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint gold bench clean browser screenshot

$(STAMP): pyproject.toml requirements-dev.txt
	@avail=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); [ "$$avail" -ge 7 ] || \
		echo "warning: the virtual environment takes about 6.5 GB (torch's CUDA build); $$avail GB free here" >&2
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir --upgrade pip
	$(PY) -m pip install -q --no-cache-dir -r requirements-dev.txt
	$(PY) -m pip install -q --no-cache-dir -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/modelmeter analyze torchvision:resnet50

# The HTML report's tests drive the system Chromium (Debian's package; no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		($(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# Refresh the gold files of rendered output (review the diff before committing).
gold: $(STAMP)
	$(PY) -m pytest tests/render/test_render.py tests/render/test_diff_render.py --update-gold

# The HTML report's screenshot in docs/images (same browser as the tests).
screenshot: $(STAMP) browser
	$(PY) docs/images/screenshot.py

bench: $(STAMP)
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
