# Buurtpeil — the two commands a fresh machine needs are `make run` and `make test`.
# Both install what they need first, from requirements.lock (exact versions).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install lock migrate run demo test test-unit test-service lint format clean

help:
	@echo "make run          install, migrate, start every service, seed Utrecht and a synthetic"
	@echo "                  panel (BUURTPEIL_PANEL_SIZE), run the loop on screen, keep serving"
	@echo "make demo         the same loop once; exits 0 with a one-line summary"
	@echo "make test         install, then the whole test suite (real RabbitMQ + PostgreSQL)"
	@echo "make test-unit    only the tests that need neither broker nor database"
	@echo "make lint         ruff"
	@echo "make migrate      create the databases if missing and migrate them"
	@echo "make lock         regenerate requirements.lock from pyproject.toml"
	@echo "make bench-outbox outbox relay rate against bare confirmed publishes"
	@echo "make bench-fanout notification fan-out (FANOUT_N) against bare encryption"
	@echo "make bench-intake submissions over HTTP against a bare nameko @http handler"
	@echo "make bench-results results of a poll with RESULTS_N responses against GROUP BY over them"

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

test-unit: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

.PHONY: bench-outbox
bench-outbox: install  ## outbox relay rate vs bare confirmed publishes
	$(BIN)/python -m benchmarks.bench_outbox

.PHONY: bench-fanout
bench-fanout: install  ## notification fan-out to FANOUT_N residents vs bare encryption
	$(BIN)/python -m benchmarks.bench_fanout

.PHONY: bench-intake
bench-intake: install  ## submissions over HTTP vs a bare nameko @http handler
	$(BIN)/python -m benchmarks.bench_intake

.PHONY: bench-results
bench-results: install  ## results RPC at RESULTS_N (1,000,000) responses vs GROUP BY over them
	$(BIN)/python -m benchmarks.bench_results
