# Two commands for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
PORT ?= 8000
SIM_PORT ?= 8100
export PORT SIM_PORT

.PHONY: install clients demo test lint check pytest lock bench soak clean messages messages-check

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required" or 0)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync -q --python $(PY) requirements.lock
	touch $@

# Regenerate the pinned lock file from pyproject.toml.
lock: install
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

demo: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	exec scripts/demo

lint: install messages-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture
	$(VENV)/bin/mypy

# Console translations: refresh locale/*/django.po from the code and templates, then compile
# the .mo files that are committed (a fresh machine needs no gettext to run the console).
MESSAGES_IGNORE := --ignore=.venv --ignore=bench --ignore=soak --ignore=tests --ignore=staticfiles --ignore=var
messages: install
	$(PY) manage.py makemessages -l zh_Hans --no-location $(MESSAGES_IGNORE)
	$(PY) manage.py compilemessages -l zh_Hans

# The committed .mo must be the compiled .po, with no untranslated or fuzzy entry left.
messages-check:
	scripts/check_messages

check: install
	$(PY) manage.py makemigrations --check --dry-run
	PRODUCTION=1 SECRET_KEY=check-deploy-$$(date +%s)-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ \
		ALLOWED_HOSTS=gateway.example.com PUBLIC_BASE_URL=https://gateway.example.com $(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# Real CLI clients the live-relay tests drive (tests/clients/package-lock.json pins them).
clients: tests/clients/node_modules/.installed

tests/clients/node_modules/.installed: tests/clients/package-lock.json
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error
	touch $@

pytest: install clients
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint check pytest

# Side-by-side benchmark (minutes): direct upstream vs relay vs LiteLLM; see bench/run.py.
# LiteLLM gets its own virtual environment; it is never a project dependency.
LITELLM_VERSION ?= 1.108.7
bench: install bench/.venv-litellm/.installed bench/.venv-granian/.installed
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) \
		|| echo "wrk not installable here: the Python load generator stands in"
	$(PY) bench/run.py

bench/.venv-litellm/.installed:
	test -x bench/.venv-litellm/bin/python || $(PYTHON) -m venv bench/.venv-litellm
	bench/.venv-litellm/bin/pip install -q --disable-pip-version-check 'litellm[proxy]==$(LITELLM_VERSION)'
	touch $@

# granian, measured beside uvicorn for the relay (bench/PROFILE.md): its own venv, which sees the
# project's packages through a .pth file; never a project dependency.
GRANIAN_VERSION ?= 2.8.7
bench/.venv-granian/.installed: $(VENV)/.installed
	test -x bench/.venv-granian/bin/python || $(PY) -m venv --without-pip bench/.venv-granian
	$(VENV)/bin/uv pip install -q --python bench/.venv-granian/bin/python 'granian[uvloop]==$(GRANIAN_VERSION)'
	$(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
		> "$$(bench/.venv-granian/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/apiyi-project.pth"
	touch $@

# Mixed-traffic soak against two relay processes on PostgreSQL + Redis; see soak/run.py.
SOAK_SECONDS ?= 600
soak: install
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) soak/run.py

clean:
	rm -rf $(VENV) var staticfiles tests/clients/node_modules
