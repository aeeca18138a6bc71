# Everything a developer or CI needs, from a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# checkov pins many libraries of its own: it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
FILE ?= local_stack/samples/one-request.json
MODE ?= direct
ARGS ?= list
CONSUMER ?=
# make bench: ONLY=a,b picks benchmarks (coldstart,intake,sweep,storm,forcedsync,bigday,
# backlog,frontdoor); the big day's users, queue-trigger process counts, time scale and throttling model.
ONLY ?=
USERS ?= 3000
PROCESSES ?= 1,4,8
SCALE ?= 1
THROTTLE ?= bucket

.PHONY: help setup lint typecheck test unit run serve post watch ops ops-demo bench stress clean

help:
	@echo "make run    - start Azurite, the Graph emulator and the development host, run the sample batch, print outcomes"
	@echo "make run MODE=group - the same batch with group-based licensing (LICENSING_MODE=group)"
	@echo "make test   - lint, type-check and run every test (starts and stops its own local stack)"
	@echo "make serve  - keep the local stack running until Ctrl-C"
	@echo "make post FILE=msg.json - post a message file to user-onboard on the running stack"
	@echo "make post HTTP=1 FILE=msg.json - POST it to the HTTP front door instead, with the sample HR system's token"
	@echo "make watch  - print events from user-onboard-events as they arrive (CONSUMER=hr-system: an Event Grid consumer's queue)"
	@echo "make ops ARGS='show HR-RUN-002' - the on-call tool (default ARGS=list) on the running local stack"
	@echo "make ops-demo - a request in every state on a stack of its own, and the on-call tool's answers"
	@echo "make bench  - run the benchmarks (figures go in docs/benchmarks.md); ONLY=bigday runs one,"
	@echo "              USERS=3000 PROCESSES=1,4,8 SCALE=1 THROTTLE=bucket set the big day's (docs/benchmarks.md)"
	@echo "make stress - the full stress suite, about 15 min (docs/reliability.md); make test runs only its short versions"

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

setup: $(STAMP) $(CHECKOV_STAMP) $(NODE_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: setup lint typecheck
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(VENV)/bin/pytest

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

run: $(STAMP) $(NODE_STAMP)
	$(PY) -m local_stack.run --mode $(MODE)

serve: $(STAMP) $(NODE_STAMP)
	$(PY) -m local_stack.serve

post: $(STAMP)
	$(PY) -m local_stack.post $(if $(HTTP),--http) $(FILE)

watch: $(STAMP)
	$(PY) -m local_stack.watch $(if $(CONSUMER),--consumer $(CONSUMER))

ops: $(STAMP)
	$(PY) -m ops --local $(ARGS)

ops-demo: $(STAMP) $(NODE_STAMP)
	$(PY) -m local_stack.ops_demo

bench: $(STAMP) $(NODE_STAMP)
	$(PY) -m local_stack.bench $(if $(ONLY),--only $(ONLY)) --bigday-users $(USERS) \
		--bigday-processes $(PROCESSES) --time-scale $(SCALE) --bigday-throttle $(THROTTLE)

stress: $(STAMP) $(NODE_STAMP)
	$(PY) -m local_stack.stress

clean:
	rm -rf .state .mypy_cache .ruff_cache .pytest_cache
