# Dream Pixel: `make dev` runs the product, `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The suite's PostgreSQL: a role that may create databases (see README, "Set up").
TEST_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/dreampixel
PYTEST_ARGS ?=
# pytest-xdist workers, two per core: the slow tiers mostly wait on the servers, clusters and
# browsers they start. Each worker has its own test database (test_<name>_gw0, ...).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
# `make test-fast` runs one worker per core plus one: its tests rarely wait, and every worker
# costs about 3 CPU seconds to start (imports, collection, its database).
FAST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
# Whole modules to a worker (their fixtures start servers and clusters once), in conftest.py's
# order: the longest modules first, so none is left running alone at the end.
XDIST_ORDER = --dist loadscope --no-loadscope-reorder
XDIST = -n $(TEST_WORKERS) $(XDIST_ORDER)
# The slow tiers `make test-fast` leaves out (markers set by folder in conftest.py).
SLOW_TIERS = browser or faults or clusters or deploy or scale
# Debian packages the deployment tests run for real (command=package).
TEST_TOOLS = nginx=nginx-light podman=podman debootstrap=debootstrap docker-compose=docker-compose caddy=caddy promtool=prometheus
UPGRADE ?=
# Python's bytecode cache, even where the environment turns it off: without it every test process,
# and every server a test starts, compiles the project and rewrites the tests' asserts again
# (about 4 s each). The caches are in __pycache__ folders, which git ignores.
unexport PYTHONDONTWRITEBYTECODE
LOCK_FLAGS = --quiet --python-version 3.11 --generate-hashes --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade-package $(UPGRADE))

.PHONY: dev test test-fast lint install install-dev lock lock-patches outdated clean screenshots contract

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

## Move every pin to the newest patch of its minor version (X.Y.*), within pyproject.toml's ranges.
lock-patches: $(BIN)/.installed-dev
	$(BIN)/python scripts/outdated.py --patches-to $(VENV)/same-minor.txt >/dev/null || true
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) --upgrade -c $(VENV)/same-minor.txt -o requirements.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) --upgrade -c $(VENV)/same-minor.txt -o requirements-dev.txt

## List the pins behind the newest patch and the newest release their ranges allow (asks the index).
outdated: $(BIN)/.installed-dev
	$(BIN)/python scripts/outdated.py

## Run the product on its embedded defaults (SQLite, local files, preview renderer, ORM queue),
## with the local payments sandbox (the fake Stripe; nothing is charged).
# Every step reads ENV_FILE (.env, if there is one) through honcho, the same way: a value there
# wins over the shell's. `make dev PORT=8001` (or PORT in .env) moves the web server.
export PORT ?= 8000
ENV_FILE ?= .env
DEV_RUN = PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho run -e $(ENV_FILE)
dev: install-dev
	$(DEV_RUN) python manage.py migrate --noinput
	$(DEV_RUN) python manage.py demo_account
	$(DEV_RUN) python manage.py demo_showcase
	@$(DEV_RUN) sh -c 'echo "Dream Pixel is starting on http://127.0.0.1:$$PORT (web, worker and the payments sandbox on http://127.0.0.1:8010; Ctrl-C stops them)"'
	DEV_SITE_PORT=$$($(DEV_RUN) printenv PORT) PAYMENTS_SANDBOX=true PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python scripts/dev_foreground.py $(BIN)/honcho start -e $(ENV_FILE) -f Procfile.dev

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Lint, migrations check, static build, the alert rules' tests, then the whole suite on PostgreSQL.
test: install-dev
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) PYTHON=$(BIN)/python ./scripts/ensure-services.sh --with-redis
	./scripts/ensure-chromium.sh
	./scripts/ensure-tools.sh $(TEST_TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache
	promtool check rules monitoring/alerts.yml
	promtool test rules monitoring/alerts_test.yml
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py collectstatic --noinput --clear -v 0
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

## The loop while working: the suite without its slow tiers (browser, faults, clusters, deploy),
## in parallel, no lint. `make test` still runs everything before a commit.
test-fast: install-dev
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) PYTHON=$(BIN)/python ./scripts/ensure-services.sh --with-redis
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -n $(FAST_WORKERS) $(XDIST_ORDER) -m "not ($(SLOW_TIERS))" $(PYTEST_ARGS)

## The live contract against Stripe test mode and Replicate (opt-in; each part skips without its key):
## CONTRACT_STRIPE_SECRET_KEY=sk_test_... CONTRACT_REPLICATE_API_TOKEN=r8_... make contract
contract: install-dev
	./scripts/ensure-services.sh
	./scripts/ensure-chromium.sh chromium
	@test -n "$$CONTRACT_STRIPE_SECRET_KEY$$CONTRACT_REPLICATE_API_TOKEN" || echo "make contract: no CONTRACT_STRIPE_SECRET_KEY and no CONTRACT_REPLICATE_API_TOKEN; every part will be skipped."
	DREAMPIXEL_CONTRACT=1 DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest tests/contract -p no:cacheprovider -rs $(PYTEST_ARGS)

## Run the browser tests and write their pictures to docs/screenshots/ (only this target does).
screenshots: install-dev
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) PYTHON=$(BIN)/python ./scripts/ensure-services.sh --with-redis
	./scripts/ensure-chromium.sh
	SCREENSHOTS=1 DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest tests/browser -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
