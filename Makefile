# Billing Desk — `make demo` and `make test` work on a fresh machine with Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
DEMO_ENV := DJANGO_DEBUG=1 BILLING_DESK_DEMO=1
# Debian's Chromium, used by the browser tests when present (never downloaded).
CHROMIUM ?= $(shell command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null)

.PHONY: demo test lint format check-migrations migrate install clean fuzz bench messages

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Billing Desk needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	mkdir -p var
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput

# seed_demo prints the demo's addresses on $(HOST):$(PORT) and, last, the admin sign-in.
demo: migrate
	$(DEMO_ENV) HOST=$(HOST) PORT=$(PORT) $(BIN)/python manage.py seed_demo $(if $(AS_OF),--as-of $(AS_OF))
	$(DEMO_ENV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(STAMP)
	BILLING_DESK_TESTING=1 BILLING_DESK_CHROMIUM="$(CHROMIUM)" $(BIN)/python -m pytest $(PYTEST_ARGS)

# Schema-driven fuzzing of every API operation (schemathesis); BILLING_DESK_FUZZ_EXAMPLES bounds it.
fuzz: $(STAMP)
	BILLING_DESK_TESTING=1 BILLING_DESK_FUZZ=1 $(BIN)/python -m pytest -q tests/fuzz $(PYTEST_ARGS)

# Style, the layer contracts (import-linter: imports point one way, no circles) and types
# (mypy with the Django and DRF plugins; strict for the pure core).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	BILLING_DESK_TESTING=1 $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-migrations: $(STAMP)
	mkdir -p var
	BILLING_DESK_TESTING=1 $(BIN)/python manage.py makemigrations --check --dry-run

# The benchmarks (bench/README.md), each printing its honest case first and its target beside
# every figure; a few minutes at the default sizes. They need PostgreSQL and Redis on this
# machine (the scripts refuse any other host) and create their own databases.
# BENCH_SCALE=1m (or 10m) loads the dashboard's year at that size; it takes much longer.
BENCH_DB    ?= postgres://postgres@127.0.0.1:5432
BENCH_REDIS ?= redis://127.0.0.1:6379/5
BENCH_ENV    = BILLING_DESK_SANDBOX_ENABLED=1 REDIS_URL=$(BENCH_REDIS)
bench: $(STAMP)
	@failed=""; \
	run() { name=$$1; shift; echo; echo "=== bench/$$name"; \
	  $(BENCH_ENV) DATABASE_URL=$(BENCH_DB)/bench $(BIN)/python bench/$$name "$$@" || failed="$$failed $$name"; }; \
	run context_http.py --seconds 10; \
	run context_cold.py; \
	run action_overhead.py --seconds 15; \
	run webhook_intake.py; \
	echo; echo "=== bench/dashboard.py"; \
	$(BENCH_ENV) DATABASE_URL=$(BENCH_DB)/billing_bench $(BIN)/python bench/dashboard.py $(if $(BENCH_SCALE),--scale $(BENCH_SCALE)) || failed="$$failed dashboard.py"; \
	echo; if [ -n "$$failed" ]; then echo "Targets missed or errors in:$$failed"; exit 1; else echo "Every target met."; fi

# Translations (issue 16): re-extract every catalog for German and compile the .mo files
# (GNU gettext's xgettext/msgfmt; the compiled .mo files are committed, so a machine without
# gettext still runs in German). Three areas: root locale/ (templates/ and static/ JS, domains
# django and djangojs), billing_app/locale/ and helpdesk_connectors/locale/ (django).
# tests/test_i18n_catalogs.py checks that each committed .mo is its .po compiled.
I18N_ENV  = DJANGO_SETTINGS_MODULE=billing_app.settings BILLING_DESK_TESTING=1
# python -P and http.client imported first: helpdesk_connectors/http.py must not shadow the
# standard library's http when makemessages runs inside helpdesk_connectors/.
I18N_MAKE = $(abspath $(BIN))/python -P -c "import http.client, sys; from django.core.management import execute_from_command_line as e; e(['django-admin'] + sys.argv[1:])" \
            makemessages -l de --no-location --no-wrap
I18N_SKIP = --ignore=.venv/* --ignore=tests/* --ignore=bench/* --ignore=var/* --ignore=node_modules/* \
            --ignore=billing_app/* --ignore=helpdesk_connectors/* --ignore=staticfiles/* --ignore=dist/*
messages: $(STAMP)
	@command -v msgfmt >/dev/null || { echo "make messages needs GNU gettext (apt-get install gettext)"; exit 1; }
	$(I18N_ENV) $(I18N_MAKE) -d django $(I18N_SKIP)
	$(I18N_ENV) $(I18N_MAKE) -d djangojs $(I18N_SKIP) --ignore=freshdesk_app/* --ignore=zendesk_app_manifest/* --ignore=static/admin/*
	cd billing_app && $(I18N_ENV) $(I18N_MAKE) -d django
	cd helpdesk_connectors && $(I18N_ENV) $(I18N_MAKE) -d django
	for po in locale/*/LC_MESSAGES/*.po billing_app/locale/*/LC_MESSAGES/*.po helpdesk_connectors/locale/*/LC_MESSAGES/*.po; do \
	  [ -f "$$po" ] || continue; msgfmt --check-format -o "$${po%.po}.mo" "$$po" || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
