# toqdash — the two commands of the README are `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= toqdash.settings.base

.PHONY: run test lint typecheck pytest test-services demo clean-demo

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Runtime deps only: the demo must work without MySQL client headers (no mysqlclient).
$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-mysql.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

# The embedded default: SQLite dashboard DB + an embedded SQLite TOQ source, tasks run in-process
# (no broker). RESET=1 rebuilds the demo world.
DEMO_ENV = DATABASE_URL=sqlite:///$(CURDIR)/var/toqdash.sqlite3 \
	TOQ_DATABASE_URL=sqlite:///$(CURDIR)/var/demo-toq.sqlite3 \
	CELERY_TASK_ALWAYS_EAGER=1 DEBUG=1 AWSLOGS_STALE_AFTER_SECONDS=0

run: $(VENV)/.runtime-installed
	mkdir -p var
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py load_demo $(if $(RESET),--reset,)
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$(PORT)

# The whole suite against the real services (PostgreSQL, MariaDB, Redis): lint, types, tests.
test: $(VENV)/.dev-installed test-services lint typecheck pytest

test-services:
	bash scripts/test-services.sh

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	DJANGO_SETTINGS_MODULE=toqdash.settings.test $(VENV)/bin/mypy .

pytest:
	DJANGO_SETTINGS_MODULE=toqdash.settings.test $(VENV)/bin/pytest $(PYTEST_ARGS)
