# Dream Pixel: `make dev` runs the product, `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dreampixel
PYTEST_ARGS ?=

.PHONY: dev test lint install clean screenshots

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/pip install --quiet -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	@touch $@

install: $(BIN)/.installed

## Run the product on its embedded defaults (SQLite, local files, preview renderer, ORM queue).
dev: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_account
	@echo "Dream Pixel is starting on http://127.0.0.1:8000 (web and worker; Ctrl-C stops both)"
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python scripts/dev_foreground.py $(BIN)/honcho start -f Procfile.dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Lint, migrations check, static build, then the whole suite on PostgreSQL.
test: install
	./scripts/ensure-services.sh --with-redis
	./scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py collectstatic --noinput --clear -v 0
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest $(PYTEST_ARGS)

## Run the browser tests and write their pictures to docs/screenshots/ (only this target does).
screenshots: install
	./scripts/ensure-services.sh --with-redis
	./scripts/ensure-chromium.sh
	SCREENSHOTS=1 DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest tests/browser -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
