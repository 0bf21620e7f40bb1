# Every target does its own set-up; `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV ?= uv
PY := $(UV) run --frozen --python python3
PROTO_OUT := sdk/core/src

.PHONY: install proto proto-check services services-stop services-cluster services-cluster-stop demo test test-unit test-model lint fmt bench clean

install:
	@command -v $(UV) >/dev/null || python3 -m pip install -q uv
	$(UV) sync --frozen --python python3 --all-packages --all-extras --quiet

proto: install
	$(PY) python -m grpc_tools.protoc -I proto \
	  --python_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
	  --mypy_out=$(PROTO_OUT) --mypy_grpc_out=$(PROTO_OUT) \
	  proto/seamfill/v1/*.proto

proto-check: proto
	@git diff --exit-code -- $(PROTO_OUT)/seamfill/v1 || \
	  (echo "generated code differs from proto/: run 'make proto' and commit" >&2; exit 1)

services:
	@bash .ci/services.sh start

services-stop:
	@bash .ci/services.sh stop

# A Redis Cluster (3 masters + 3 replicas) and a Sentinel group on loopback, for the cluster tests.
services-cluster:
	@bash .ci/services-cluster.sh start

services-cluster-stop:
	@bash .ci/services-cluster.sh stop

demo: install services
	$(PY) seamfill demo $(DEMO_ARGS)

test: install services services-cluster
	$(PY) pytest -n auto -W error tests

# The model-based test of the lease engine, long profile (make test runs a bounded one).
test-model: install services
	SEAMFILL_MODEL_EXAMPLES=$${SEAMFILL_MODEL_EXAMPLES:-400} $(PY) pytest -W error --timeout 1800 \
	  tests/integration/test_coordinator_stateful.py

test-unit: install
	$(PY) pytest -W error tests/unit

lint: install
	$(PY) ruff format --check .
	$(PY) ruff check .
	$(PY) mypy sdk/core/src/seamfill/core sdk/src/seamfill/sdk sdk/cli/src/seamfill/cli \
	  coordinator/src/seamfill/coordinator worker/src/seamfill/worker
	$(PY) lint-imports

fmt: install
	$(PY) ruff format .
	$(PY) ruff check --fix .

bench: install services
	$(PY) python -m tests.bench $(BENCH_ARGS)
