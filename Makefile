# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
# The client reads the verified chain through a private API before Python 3.13 and a public one
# from 3.13 on, so its tests run on both (design brief, "Conventions").
PYTHON_313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3))
VENV := .venv
VENV_313 := .venv-3.13
VENV_MITM := .venv-mitm
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= var/pinwarden

.PHONY: run test test-main test-313 lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[server,test]'
	touch $@

$(VENV_313)/.installed: pyproject.toml
	$(PYTHON_313) -m venv $(VENV_313)
	$(VENV_313)/bin/pip install --quiet --upgrade pip
	$(VENV_313)/bin/pip install --quiet -e '.[test]'
	touch $@

# A real interception proxy for the MitM tests; where it cannot be installed they skip, saying why.
$(VENV_MITM)/.installed: pyproject.toml
ifeq ($(PYTHON_313),)
	@echo "SKIPPED: mitmproxy needs Python >= 3.12 and none was found; the MitM tests will skip"
else
	@($(PYTHON_313) -m venv $(VENV_MITM) && $(VENV_MITM)/bin/pip install --quiet -e '.[mitm]' \
	  && touch $@) || echo "mitmproxy could not be installed; the MitM tests will skip"
endif

# The pin server on SQLite with nothing to configure: init on first run (a development passphrase
# in $(DATA)/passphrase, mode 0600), then serve. docs/server.md has the production set-up.
run: $(VENV)/.installed
	$(VENV)/bin/pinwarden quickstart --data $(DATA) --host $(HOST) --port $(PORT)

test: test-main test-313

test-main: $(VENV)/.installed $(VENV_MITM)/.installed
	$(VENV)/bin/python -m pytest -q

test-313:
ifeq ($(PYTHON_313),)
	@echo "SKIPPED: client tests on Python 3.13: no Python 3.13 found (set PYTHON_313=/path/to/python3.13)"
else
	$(MAKE) $(VENV_313)/.installed
	$(VENV_313)/bin/python -m pytest -q tests/core tests/client tests/dynamic tests/document
endif

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/client_overhead.py

clean:
	rm -rf $(VENV) $(VENV_313) $(VENV_MITM)
