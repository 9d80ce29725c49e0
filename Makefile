# One entry point. `make demo` runs the shop on the embedded default (no services needed);
# `make test` runs the whole test suite. Both create the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install browser demo test test-fast migrate seed clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(INSTALLED)

install: $(INSTALLED)

# The browser tests need Debian's Chromium (the demo does not).
browser:
	@bash scripts/install_browser.sh

migrate: install
	$(BIN)/python manage.py migrate_all

seed: migrate
	$(BIN)/python manage.py seed_demo

demo: seed
	$(BIN)/python manage.py demo --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests only: no RabbitMQ, PostgreSQL or browser needed.
test-fast: install
	$(BIN)/python -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

clean:
	rm -rf var
