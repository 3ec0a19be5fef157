# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
# Besides the main run on $(PYTHON), the client, dynamic and document suites run on every other
# Python the project declares (>= 3.10) that is installed: the verified-chain API is private before
# 3.13 and public from 3.13 on (docs/security.md rule 3), and http.client closes sockets differently
# from 3.13 on (src/pinwarden/client/_fetch.py). Each one missing says SKIPPED.
TEST_PYTHONS ?= 3.10 3.12 3.13
CLIENT_SUITES := tests/core tests/client tests/dynamic tests/document
# Each suite on both cores of the machine (pytest-xdist): `make test` stays well under 15 minutes.
PYTEST_WORKERS ?= 2
PYTEST := -m pytest -q -n $(PYTEST_WORKERS)
# $(call python_for,3.12): PYTHON_3.12 when set, else that version under pyenv, else nothing.
python_for = $(or $(PYTHON_$(1)),$(firstword $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python3)))
PYTHON_MITM ?= $(or $(call python_for,3.13),$(call python_for,3.12))
VENV := .venv
VENV_MITM := .venv-mitm
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= var/pinwarden

.PHONY: run test test-main $(TEST_PYTHONS:%=test-%) js-build test-js lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[server,test]'
	touch $@

# One venv per extra Python, with the client and test extras only: the tests that need the server
# extra skip there, saying why.
$(TEST_PYTHONS:%=.venv-%/.installed): .venv-%/.installed: pyproject.toml
	$(call python_for,$*) -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --upgrade pip
	.venv-$*/bin/pip install --quiet -e '.[test]'
	touch $@

# A real interception proxy for the MitM tests; where it cannot be installed they skip, saying why.
$(VENV_MITM)/.installed: pyproject.toml
ifeq ($(PYTHON_MITM),)
	@echo "SKIPPED: mitmproxy needs Python >= 3.12 and none was found; the MitM tests will skip"
else
	@($(PYTHON_MITM) -m venv $(VENV_MITM) && $(VENV_MITM)/bin/pip install --quiet -e '.[mitm]' \
	  && touch $@) || echo "mitmproxy could not be installed; the MitM tests will skip"
endif

# The pin server on SQLite with nothing to configure: init on first run (a development passphrase
# in $(DATA)/passphrase, mode 0600), then serve. docs/server.md has the production set-up.
run: $(VENV)/.installed
	$(VENV)/bin/pinwarden quickstart --data $(DATA) --host $(HOST) --port $(PORT)

test: test-main test-js $(TEST_PYTHONS:%=test-%)

# js-build first: tests/crosscheck runs the TypeScript verifier it builds (and skips without it).
test-main: $(VENV)/.installed $(VENV_MITM)/.installed js-build
	$(VENV)/bin/python $(PYTEST)

# The TypeScript verifier in js/ (docs/spec.md's vectors, the same as the Python verifier's), where
# Node.js is installed; npm ci installs exactly what js/package-lock.json names.
js/node_modules/.package-lock.json: js/package-lock.json
	cd js && npm ci --no-audit --no-fund --loglevel=error

js-build:
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
	  $(MAKE) --no-print-directory js/node_modules/.package-lock.json && (cd js && npm run --silent build); \
	else echo "SKIPPED: js/ (TypeScript verifier): node and npm are not installed"; fi

test-js: js-build
	@if command -v node >/dev/null; then cd js && node --test dist/test/; \
	else echo "SKIPPED: js/ tests (TypeScript verifier): node is not installed"; fi

# Any pytest failure fails make, "no tests collected" (exit code 5) included.
$(TEST_PYTHONS:%=test-%): test-%:
	@if [ -z "$(call python_for,$*)" ]; then \
	  echo "SKIPPED: $(CLIENT_SUITES) on Python $*: not installed (set PYTHON_$*=/path/to/python$*)"; \
	else \
	  echo "== $(CLIENT_SUITES) on Python $*" && \
	  $(MAKE) --no-print-directory .venv-$*/.installed && \
	  .venv-$*/bin/python $(PYTEST) $(CLIENT_SUITES); \
	fi

# The reliability suite in full (docs/reliability.md): `make test` runs it with 20 fuzz cases per
# operation, this with 100. Set PINWARDEN_TEST_POSTGRES_URL to run it on PostgreSQL too.
.PHONY: test-reliability
test-reliability: $(VENV)/.installed
	PINWARDEN_FUZZ_EXAMPLES=100 $(VENV)/bin/python -m pytest -q tests/reliability

lint: $(VENV)/.installed js-build
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	@if command -v npm >/dev/null; then cd js && npm run --silent lint; \
	else echo "SKIPPED: js/ lint: npm is not installed"; fi

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/client_overhead.py

clean:
	rm -rf $(VENV) $(TEST_PYTHONS:%=.venv-%) $(VENV_MITM) js/node_modules js/dist
