# The project's verbs: setup gen run test lint typecheck bench check.
# Every target installs what it needs first, so `make run` and `make test` work on a fresh machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
GEN := iris_grpc/generated
export PATH := $(abspath $(VENV))/bin:$(PATH)
PROTO := proto/iris/v1/iris.proto
PROTODEPS := .build/protodeps/google/api

.PHONY: setup gen lint-proto run test lint typecheck bench check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Python stubs with mypy-protobuf types; generated modules import each other by proto path
# (`from iris.v1 import ...`), so the imports are rewritten to the package they live in.
gen: setup $(PROTODEPS)
	rm -rf $(GEN) && mkdir -p $(GEN)/iris/v1
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --python_out=$(GEN) --mypy_out=$(GEN) --grpc_python_out=$(GEN) --mypy_grpc_out=$(GEN) $(PROTO)
	sed -i 's/^from iris\.v1 import/from iris_grpc.generated.iris.v1 import/' $(GEN)/iris/v1/*.py $(GEN)/iris/v1/*.pyi
	for d in $(GEN) $(GEN)/iris $(GEN)/iris/v1; do echo '"""Generated from proto/ by `make gen`; do not edit."""' > $$d/__init__.py; done
	$(MAKE) --no-print-directory lint-proto
	$(PY) -m iris_grpc.readme_table README.md

$(PROTODEPS): $(STAMP)
	mkdir -p $@ && cp $(SITE)/google/api/annotations.proto $(SITE)/google/api/http.proto $@/

lint-proto: setup $(PROTODEPS)
	$(VENV)/bin/buf lint

run: setup
	$(VENV)/bin/iris serve --config examples/config.yaml --offline-model

test: setup
	$(PY) -m pytest

lint: setup lint-proto
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy iris_core iris_grpc rest_gateway tests bench

bench: setup
	$(PY) -m bench.run

check: lint typecheck test

clean:
	rm -rf .build .mypy_cache .ruff_cache .pytest_cache
