# The project's verbs: setup gen run test lint typecheck bench check.
# Every target installs what it needs first, so `make run` and `make test` work on a fresh machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
GEN := clients/python/iris_client/generated
export PATH := $(abspath $(VENV))/bin:$(PATH)
PROTO := proto/iris/v1/iris.proto
PROTODEPS := .build/protodeps/.copied
INSPECTOR_DIR := tests/mcp/inspector
INSPECTOR := $(INSPECTOR_DIR)/node_modules/.bin/mcp-inspector
# The Go client's code generators, pinned, installed into .build/bin by `go install`.
GO_BIN := $(abspath .build/bin)
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# The TypeScript client's dependencies (protoc-gen-es among them), pinned by its lock file.
TS := clients/ts
TS_DEPS := $(TS)/node_modules/.installed-stamp

.PHONY: setup gen gen-go gen-ts lint-proto breaking release-contract run test lint typecheck bench check clean

setup: $(STAMP)

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The contract kit (clients/python) is a package of its own, which Iris depends on.
	$(PY) -m pip install --quiet -e ./clients/python -e '.[dev]'
	touch $@

# Python stubs with mypy-protobuf types; generated modules import each other by proto path
# (`from iris.v1 import ...`), so the imports are rewritten to the package they live in.
gen: setup $(PROTODEPS)
	rm -rf $(GEN) && mkdir -p $(GEN)/iris/v1
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --python_out=$(GEN) --mypy_out=$(GEN) --grpc_python_out=$(GEN) --mypy_grpc_out=$(GEN) $(PROTO)
	# The contract's comments, for the schemas derived from it (MCP tool parameters are described by them).
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) --include_source_info \
	  --descriptor_set_out=$(GEN)/iris/v1/iris.binpb $(PROTO)
	sed -i 's/^from iris\.v1 import/from iris_client.generated.iris.v1 import/' $(GEN)/iris/v1/*.py $(GEN)/iris/v1/*.pyi
	for d in $(GEN) $(GEN)/iris $(GEN)/iris/v1; do echo '"""Generated from proto/ by `make gen`; do not edit."""' > $$d/__init__.py; done
	$(MAKE) --no-print-directory lint-proto gen-go gen-ts
	$(PY) -m iris_app.readme_table README.md

# Go messages and stubs (clients/go/irisv1). `--path proto/iris`: Google's own google/api packages are imported
# from google.golang.org/genproto, never regenerated.
gen-go: $(PROTODEPS) $(GO_BIN)/protoc-gen-go $(GO_BIN)/protoc-gen-go-grpc
	$(VENV)/bin/buf generate --template clients/go/buf.gen.yaml --path proto/iris

$(GO_BIN)/protoc-gen-go $(GO_BIN)/protoc-gen-go-grpc: Makefile
	GOBIN=$(GO_BIN) go install $(PROTOC_GEN_GO)
	GOBIN=$(GO_BIN) go install $(PROTOC_GEN_GO_GRPC)
	touch $(GO_BIN)/protoc-gen-go $(GO_BIN)/protoc-gen-go-grpc

# TypeScript messages and the service descriptor (clients/ts/src/gen), by protoc-gen-es; protobuf-es needs
# the descriptors of the google/api files the contract imports, so those are generated beside it.
gen-ts: $(PROTODEPS) $(TS_DEPS)
	$(VENV)/bin/buf generate --template clients/ts/buf.gen.yaml

# npm ci also builds the package (its prepare script runs tsc).
$(TS_DEPS): $(TS)/package.json $(TS)/package-lock.json
	npm ci --prefix $(TS) --no-audit --no-fund --loglevel=error
	touch $@

# buf lints with the googleapis protos the contract imports, copied from the installed package.
$(PROTODEPS): $(STAMP) Makefile
	mkdir -p .build/protodeps/google/api
	cp $(addprefix $(SITE)/google/api/,annotations.proto http.proto field_behavior.proto) .build/protodeps/google/api/
	touch $@

lint-proto: setup $(PROTODEPS)
	$(VENV)/bin/buf lint

# The contract as last released; a change that would break its clients on the wire fails `make breaking`.
RELEASED := proto/released/iris-v1.binpb

breaking: setup $(PROTODEPS)
	$(VENV)/bin/buf build -o .build/contract.binpb
	$(VENV)/bin/buf breaking .build/contract.binpb --against $(RELEASED)

# Run at a release: the contract as it stands becomes the one later changes must stay compatible with.
release-contract: setup $(PROTODEPS)
	$(VENV)/bin/buf build --exclude-source-info -o $(RELEASED)

run: setup
	$(VENV)/bin/iris serve --config examples/config.yaml --offline-model

test: setup $(INSPECTOR) $(TS_DEPS) /usr/bin/chromium /usr/sbin/sshd
	$(PY) -m pytest

# Debian packages that tests start: Chromium (the dashboard's browser tests; Playwright's own browser download
# is not reachable) and OpenSSH's server (the remote-team tests run a real sshd on 127.0.0.1).
/usr/bin/chromium:
	apt-get update -qq && apt-get install -y -qq chromium
/usr/sbin/sshd:
	apt-get update -qq && apt-get install -y -qq openssh-server

# The official MCP Inspector (npm), whose CLI mode tests the stdio adapter; pinned by its lock file.
$(INSPECTOR): $(INSPECTOR_DIR)/package.json $(INSPECTOR_DIR)/package-lock.json
	npm ci --prefix $(INSPECTOR_DIR) --no-audit --no-fund --loglevel=error
	touch $@

lint: setup lint-proto breaking
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy iris_core iris_grpc iris_app iris_offline_model rest_gateway mcp_adapter clients/python/iris_client tests bench

bench: setup $(TS_DEPS)
	$(PY) -m bench.run

check: lint typecheck test

clean:
	rm -rf .build .mypy_cache .ruff_cache .pytest_cache
