# Two commands do everything on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MANAGE := cd digits_model && $(BIN)/python manage.py
PORT ?= 8000
export PORT
# Local state, where the settings look for it (a relative DIGITS_VAR_DIR is the repository's).
VAR_DIR := $(abspath $(or $(DIGITS_VAR_DIR),var))
KEY_FILE := $(abspath $(or $(DIGITS_SECRET_KEY_FILE),$(VAR_DIR)/secret_key))
# A SECRET_KEY in the environment needs no key file.
SECRET := $(if $(strip $(SECRET_KEY)),,$(KEY_FILE))

.PHONY: setup run dev test lint format bench eval train clean docker-build docker-check docker-check-full

setup: $(STAMP)  ## create .venv and install runtime + dev requirements

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

$(KEY_FILE):  ## a random SECRET_KEY for local runs, made once, never committed
	mkdir -p $(dir $@)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

run: setup $(SECRET)  ## migrate, register the shipped model, serve with gunicorn
	$(MANAGE) migrate --noinput -v 0
	$(MANAGE) bootstrap_model
	cd digits_model && exec $(BIN)/gunicorn digits_model.wsgi -c gunicorn.conf.py

dev: setup  ## Django's development server with DEBUG on
	$(MANAGE) migrate --noinput -v 0
	cd digits_model && DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint  ## ruff, then the whole pytest suite
	$(BIN)/pytest

eval: setup  ## accuracy on semeion (5 upload styles, real HTTP), test/, calibration, latency
	$(BIN)/python -m bench.evaluate $(if $(SEMEION),--semeion $(SEMEION)) $(EVAL_ARGS)

bench: setup  ## model side and HTTP vs a FastAPI peer under wrk; table in var/bench.txt
	@command -v wrk >/dev/null || { echo "make bench needs wrk: sudo apt-get install wrk" >&2; exit 2; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

train: setup $(SECRET)  ## retrain the shipped model/clf.pickle (deterministic)
	$(MANAGE) train_model --seed 0

clean:
	rm -rf $(VENV) var

# --- Docker -------------------------------------------------------------------------------------
# verify.sh (in ../shared/tools/docker/) builds the dockerfile on a stand-in python:3.11-slim
# (Docker Hub is unreachable here), runs it and probes /health/; it starts dockerd if needed.
DOCKER_VERIFY ?= $(CURDIR)/../shared/tools/docker/verify.sh

docker-build:  ## the seed's image: docker build --tag corona-model:v0 .
	docker build --tag corona-model:v0 .

docker-check:  ## build + run + probe the image, then the same through docker-compose
	@test -x $(DOCKER_VERIFY) || { echo "docker-check: $(DOCKER_VERIFY) not found"; exit 3; }
	$(DOCKER_VERIFY) . http://127.0.0.1:8080/health/
	$(DOCKER_VERIFY) . http://127.0.0.1:80/health/ --compose

docker-check-full:  ## the compose "full" profile, with stand-ins for the postgres/minio images
	DOCKER_TOOLS_DIR=$(dir $(DOCKER_VERIFY)) docker/check-full-profile.sh
