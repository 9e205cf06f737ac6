# Baton — the two set-up commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
export DEBUG ?= 1

.PHONY: run test install install-dev lint pytest bench migrate demo clean browser

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/activate
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo
	$(PY) manage.py demo_admin

# Links Baton puts in pages and e-mails (manage links, the printed admin URL) follow HOST and PORT unless
# BASE_URL is set.
run: export BASE_URL ?= http://$(HOST):$(PORT)
run: demo
	@echo "Baton is serving on http://$(HOST):$(PORT)/ (admin: http://$(HOST):$(PORT)/admin/)"
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Browser tests need Debian's chromium; tests/e2e skips itself when /usr/bin/chromium is missing
# unless REQUIRE_BROWSER=1 (set by .ci/run).
pytest: install-dev
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	DEBUG=1 $(PY) manage.py check
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint pytest

# The booking and ledger benchmarks run on PostgreSQL (a throwaway database next to BENCH_DATABASE_URL's); set
# BENCH_DATABASE_URL= (empty) to run it on a temporary SQLite file instead.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/baton
bench: install-dev
	@for f in bench/bench_*.py; do echo "== $$f"; \
	  if [ "$$f" = bench/bench_booking.py ] || [ "$$f" = bench/bench_ledger.py ]; then \
	    DATABASE_URL="$(BENCH_DATABASE_URL)" $(PY) $$f || exit 1; \
	  else $(PY) $$f || exit 1; fi; done

clean:
	rm -rf $(VENV) baton.sqlite3 baton.sqlite3-* .pytest_cache .hypothesis staticfiles
