# kata-agent: the two commands that matter are `make demo` and `make test`.
# Everything installs what it needs first (make deps) and builds what is missing.

SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build agent test test-unit test-host test-vm demo bench guest kernel initrd rootfs \
        format format-check sanitize clean help

all: build

help:
	@echo "make demo    boot the guest under QEMU and run a container through the agent"
	@echo "make test    every test tier (unit, host, vm); summary from ctest at the end"
	@echo "make bench   benchmarks -> bench/results/{latest.json,REPORT.md}"
	@echo "make deps    install build and test dependencies (apt-get, idempotent)"

deps:
	@./tools/deps.sh

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS) 2>&1 | grep -vE '^\[|^(make|gmake)\[|Scanning|Built target|Consolidate|warning: Using .(getaddrinfo|getservby)|^\(\.text' || true
	@test -x $(BUILD)/bin/kata-agent && test -x $(BUILD)/bin/agent-ctl

agent: build

test: deps build
	@cd $(BUILD) && ctest --output-on-failure --timeout 1800 -j1

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

test-host: build
	@cd $(BUILD) && ctest --output-on-failure -L host

test-vm: build
	@cd $(BUILD) && ctest --output-on-failure -L vm

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD)
