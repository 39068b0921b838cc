# Buurtpeil — the two commands a fresh machine needs are `make run` and `make test`.
# Both install what they need first, from requirements.lock (exact versions).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install lock migrate run demo test test-unit test-service faults test-browser lint \
	format clean messages vendor

help:
	@echo "make run          install, migrate, start every service, seed Utrecht and a synthetic"
	@echo "                  panel (BUURTPEIL_PANEL_SIZE), run the loop on screen, keep serving"
	@echo "make demo         the same loop once; exits 0 with a one-line summary"
	@echo "make test         install, then the whole test suite (real RabbitMQ + PostgreSQL)"
	@echo "make test-unit    only the tests that need neither broker nor database"
	@echo "make faults       the reliability suite: kill -9, broker cluster node loss, broker and"
	@echo "                  database restarts under load; one 'fault:' line each (FAULT_RATE)"
	@echo "make test-browser the browser tests (Debian's chromium; part of make test)"
	@echo "make messages     extract the web apps' texts, update and compile the catalogues"
	@echo "make vendor       fetch the front-end packages (npm pack) into web/static/vendor"
	@echo "make lint         ruff; import-linter: the boundaries between the services; mypy"
	@echo "make migrate      create the databases if missing and migrate them"
	@echo "make lock         regenerate requirements.lock from pyproject.toml"
	@echo "make bench-outbox outbox relay rate against bare confirmed publishes"
	@echo "make bench-fanout notification fan-out (FANOUT_N) against a bare sender, same receiver"
	@echo "make bench-intake submissions over HTTP against a bare nameko @http handler"
	@echo "make bench-results results of a poll with RESULTS_N responses against GROUP BY over them"
	@echo "make bench-results-live  results read by 20 dashboards while 200 answers/s arrive (LIVE_N)"
	@echo "make bench-pages  the resident's poll page and first page against the bare static file"
	@echo "make bench-release-breakdowns  a first release with kinds and channels against the same"
	@echo "                  respondents all residents in the app (RELEASE_N: poll sizes)"
	@echo "make bench-storage bytes on disk per response, panel member and delivery (docs/scaling.md)"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[dev]'
	{ echo "# Every package, transitive ones included, at the exact version we test with."; \
	  echo "# Regenerate: make lock (fresh venv, pip install -e '.[dev]', pip freeze)."; \
	  .lockenv/bin/pip freeze --exclude-editable; } > requirements.lock
	rm -rf .lockenv

migrate: install
	$(BIN)/python -m services.common.migrate --create

run: install
	$(BIN)/python -m deploy.local

demo: install
	$(BIN)/python -m deploy.local --once

test: install
	$(BIN)/python -m pytest
	@$(MAKE) --no-print-directory test-browser

# Browser tests: a pytest process of their own without eventlet (patched, Playwright's stop
# hangs), Debian's chromium (Playwright cannot download a browser here).
test-browser: install
	@test -x /usr/bin/chromium || { echo "browser tests need Debian's chromium: apt-get install -y chromium"; exit 1; }
	BUURTPEIL_NO_EVENTLET=1 $(BIN)/python -m pytest -o addopts="-ra -p no:cacheprovider" \
	  --suppress-nameko-eventlet-notification tests/browser

test-unit: install
	$(BIN)/python -m pytest tests/unit

# Also part of `make test`. Private RabbitMQ nodes and a private PostgreSQL: the shared servers
# are never stopped. docs/reliability.md keeps the table of the 'fault:' lines.
faults: install
	$(BIN)/python -m pytest tests/reliability

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .

# The web apps' texts: extract the ids (English) from web/, update the Dutch and English
# catalogues, compile them (the .mo files are committed; a unit test checks they match).
messages: install
	$(BIN)/pybabel extract -F web/babel.cfg -k N_ -k _ -k ngettext:1,2 --no-location \
	  --sort-output --project=buurtpeil -o web/locale/messages.pot .
	$(BIN)/pybabel update -i web/locale/messages.pot -d web/locale -D messages -w 100 \
	  --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d web/locale -D messages --statistics

vendor: install
	$(BIN)/python -m web.vendoring

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

.PHONY: bench-outbox
bench-outbox: install  ## outbox relay rate vs bare confirmed publishes
	$(BIN)/python -m benchmarks.bench_outbox

.PHONY: bench-fanout
bench-fanout: install  ## notification fan-out to FANOUT_N residents vs a bare sender (same receiver)
	$(BIN)/python -m benchmarks.bench_fanout

.PHONY: bench-intake
bench-intake: install  ## submissions over HTTP vs a bare nameko @http handler
	$(BIN)/python -m benchmarks.bench_intake

.PHONY: bench-results
bench-results: install  ## results RPC at RESULTS_N (1,000,000) responses vs GROUP BY over them
	$(BIN)/python -m benchmarks.bench_results

.PHONY: bench-results-live
bench-results-live: install  ## results read every 2 s by 20 readers while 200 answers/s arrive
	$(BIN)/python -m benchmarks.bench_results_live

.PHONY: bench-pages
bench-pages: install  ## the resident's poll page and first page vs the bare static file
	BUURTPEIL_NO_EVENTLET=1 $(BIN)/python -m benchmarks.bench_pages

.PHONY: bench-release-breakdowns
bench-release-breakdowns: install  ## a release with kinds and channels vs residents in the app
	$(BIN)/python -m benchmarks.bench_release_breakdowns $(or $(RELEASE_N),160 400 1000)

.PHONY: bench-storage
bench-storage: install  ## bytes per response, member, delivery in throwaway databases (docs/scaling.md)
	$(BIN)/python -m benchmarks.bench_storage
