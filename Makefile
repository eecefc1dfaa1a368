# Dream Pixel: `make dev` runs the product, `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dreampixel
PYTEST_ARGS ?=
UPGRADE ?=
LOCK_FLAGS = --quiet --python-version 3.11 --generate-hashes --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade-package $(UPGRADE))

.PHONY: dev test lint install install-dev lock clean screenshots

# Installs come from the hashed locks only (--require-hashes), so every machine gets the same
# packages. `make dev` needs the runtime set; `make test` adds the tools and test libraries.
$(VENV)/.created:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@touch $@

$(BIN)/.installed-run: requirements.txt $(VENV)/.created
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	@touch $@

$(BIN)/.installed-dev: requirements-dev.txt $(VENV)/.created
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" ; test $${PIPESTATUS[0]} -eq 0
	@touch $@ $(BIN)/.installed-run

install: $(BIN)/.installed-run
install-dev: $(BIN)/.installed-dev

## Regenerate the hashed locks from pyproject.toml; `make lock UPGRADE=stripe` moves one package.
lock: $(BIN)/.installed-dev
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.txt

## Run the product on its embedded defaults (SQLite, local files, preview renderer, ORM queue).
dev: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_account
	@echo "Dream Pixel is starting on http://127.0.0.1:8000 (web and worker; Ctrl-C stops both)"
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python scripts/dev_foreground.py $(BIN)/honcho start -f Procfile.dev

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Lint, migrations check, static build, the alert rules' tests, then the whole suite on PostgreSQL.
test: install-dev
	./scripts/ensure-services.sh --with-redis
	./scripts/ensure-chromium.sh
	./scripts/ensure-promtool.sh
	promtool check rules monitoring/alerts.yml
	promtool test rules monitoring/alerts_test.yml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py collectstatic --noinput --clear -v 0
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest $(PYTEST_ARGS)

## Run the browser tests and write their pictures to docs/screenshots/ (only this target does).
screenshots: install-dev
	./scripts/ensure-services.sh --with-redis
	./scripts/ensure-chromium.sh
	SCREENSHOTS=1 DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest tests/browser -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
