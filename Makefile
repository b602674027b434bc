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

kernel: ; @kernel-config/build-kernel.sh $(BUILD)/guest

GUEST := $(BUILD)/guest

# The guest: kernel (cached under ~/.cache by input hash), the production initrd, the test
# initrd (busybox, guest-side test helpers, a busybox container rootfs), disk images.
guest: build kernel initrd initrd-test rootfs

initrd: build
	@initrd/mkinitrd.py --agent $(BUILD)/bin/kata-agent --out $(GUEST)/initrd.img

$(GUEST)/busybox-rootfs/bin/busybox: rootfs-builder/test-rootfs.sh
	@rm -rf $(GUEST)/busybox-rootfs && rootfs-builder/test-rootfs.sh $(GUEST)/busybox-rootfs >/dev/null

initrd-test: build $(GUEST)/busybox-rootfs/bin/busybox
	@initrd/mkinitrd.py --agent $(BUILD)/bin/kata-agent --debug --out $(GUEST)/initrd-test.img \
	  --add tests/vm/guest/kernel-smoke.sh:/usr/bin/kernel-smoke \
	  --add $(BUILD)/bin/bpf-dev-probe:/usr/bin/bpf-dev-probe \
	  --add $(BUILD)/bin/sysv-probe:/usr/bin/sysv-probe \
	  --add $(BUILD)/bin/cg-probe:/usr/bin/cg-probe \
	  $(if $(wildcard $(BUILD)/bin/vsock-echo),--add $(BUILD)/bin/vsock-echo:/usr/bin/vsock-echo) \
	  --tree $(GUEST)/busybox-rootfs:/opt/kata-test/busybox

rootfs: build $(GUEST)/busybox-rootfs/bin/busybox
	@rootfs-builder/build-guest-rootfs.sh $(BUILD)/bin/kata-agent $(GUEST)
	@rootfs-builder/build-disk-image.sh $(GUEST)/busybox-rootfs $(GUEST)/busybox.ext4

test: deps build guest
	@cd $(BUILD) && ctest --output-on-failure --timeout 1800 -j1

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

test-host: build
	@cd $(BUILD) && ctest --output-on-failure -L host

test-vm: build guest
	@cd $(BUILD) && ctest --output-on-failure -L vm

demo: deps build guest
	@/usr/bin/python3 tools/demo.py

# Benchmarks (never part of `make test`): bench/results/{latest.json,REPORT.md}.
bench: deps build guest
	@/usr/bin/python3 bench/run.py

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD)
