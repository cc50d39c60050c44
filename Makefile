# Short names for the two set-up commands and the rest. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DATA ?= data

.PHONY: demo test install system-deps web-deps lint bench clean

# Create the virtual environment and install forumlive (the Dockerfile runs the same script).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	VENV=$(VENV) EXTRAS=test scripts/install.sh
	touch $@

# Install, seed a demo forum under ./data and serve it at http://127.0.0.1:$(PORT).
demo: install
	$(VENV)/bin/forumlive demo --port $(PORT) --data-dir $(DATA)

# Install what the tests need (Debian's chromium when run as root) and run the whole suite.
test: install system-deps web-deps
	$(VENV)/bin/ruff check server realtime captioning web tests bench
	$(PY) -m pytest -q

system-deps:
	scripts/system-deps.sh

# axe-core from the npm registry for the accessibility audit (tests/web/package-lock.json pins it).
web-deps: tests/web/node_modules/axe-core/axe.min.js

tests/web/node_modules/axe-core/axe.min.js: tests/web/package.json tests/web/package-lock.json
	cd tests/web && npm ci --no-audit --no-fund
	touch $@

lint: install
	$(VENV)/bin/ruff check server realtime captioning web tests bench

bench: install
	$(PY) bench/fanout/run.py
	$(PY) bench/scaleout/run.py
	$(PY) bench/relay/run.py
	$(PY) bench/report/run.py
	$(PY) bench/captions/run.py
	$(PY) bench/cafe/run.py
	$(PY) bench/lite/run.py

clean:
	rm -rf $(VENV) tests/artifacts tests/web/node_modules
