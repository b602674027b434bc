# kata-agent: the two commands that matter are `make demo` and `make test`.
# Everything installs what it needs first (make deps) and builds what is missing.

SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build agent test test-unit test-host test-vm demo bench guest kernel initrd initrd-crun rootfs \
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
	  --add $(BUILD)/bin/ptrace-probe:/usr/bin/ptrace-probe \
	  --add tests/vm/guest/policy.json:/etc/kata-test/policy.json \
	  $(if $(wildcard $(BUILD)/bin/vsock-echo),--add $(BUILD)/bin/vsock-echo:/usr/bin/vsock-echo) \
	  --tree $(GUEST)/busybox-rootfs:/opt/kata-test/busybox

# The crun comparison's initrd: the test initrd's agent and debug shell plus a rootfs carrying
# crun (with its shared libraries), sec-probe and run-timed, at /opt/kata-test/crun. Not part of
# `make guest`: the tests that need it build it when it is missing.
initrd-crun: build
	@rm -rf $(GUEST)/crun-rootfs && rootfs-builder/crun-rootfs.sh $(GUEST)/crun-rootfs $(BUILD)/bin/sec-probe $(BUILD)/bin/run-timed >/dev/null
	@initrd/mkinitrd.py --agent $(BUILD)/bin/kata-agent --debug --out $(GUEST)/initrd-crun.img \
	  --tree $(GUEST)/crun-rootfs:/opt/kata-test/crun

rootfs: build $(GUEST)/busybox-rootfs/bin/busybox
	@rootfs-builder/build-guest-rootfs.sh $(BUILD)/bin/kata-agent $(GUEST)
	@rootfs-builder/build-disk-image.sh $(GUEST)/busybox-rootfs $(GUEST)/busybox.ext4

test: deps build guest fuzz-build
	@cd $(BUILD) && ctest --output-on-failure --timeout 1800 -j1

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

test-host: build
	@cd $(BUILD) && ctest --output-on-failure -L host

test-vm: build guest
	@cd $(BUILD) && ctest --output-on-failure -L vm

demo: deps build guest
	@/usr/bin/python3 tools/demo.py

# Benchmarks (never part of `make test`): bench/results/{latest.json,REPORT.md,*.png}. The
# ttrpc-only flavour of the agent (-DKATA_GRPC=OFF) is built beside $(BUILD) in $(BENCH_TTRPC).
BENCH_TTRPC ?= build-bench-ttrpc
.PHONY: bench-ttrpc
bench: deps build guest bench-ttrpc
	@KATA_BUILD_DIR=$(abspath $(BUILD)) KATA_TTRPC_BUILD_DIR=$(abspath $(BENCH_TTRPC)) /usr/bin/python3 bench/run.py

# Soak (never part of `make test`; tests/vm/test_soak.py is its short version): 10,000 exec
# cycles and 1,000 container cycles against one agent in the guest; leak checks, curves in
# bench/results/soak.{json,png}.
.PHONY: soak
soak: deps build guest
	@KATA_BUILD_DIR=$(abspath $(BUILD)) /usr/bin/python3 bench/soak.py

bench-ttrpc:
	@cmake -S . -B $(BENCH_TTRPC) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKATA_GRPC=OFF -DKATA_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_TTRPC) -j $(JOBS) --target kata-agent 2>&1 | grep -E '^kata-agent:|error|Error' || true
	@test -x $(BENCH_TTRPC)/bin/kata-agent

# Robustness: fuzzing (tests/fuzz, build-fuzz/) and sanitizers (build-asan/)
# The fuzz build is clang with -fsanitize=fuzzer,address,undefined, dynamically linked;
# `make test` builds it and its ctest entry fuzz.smoke runs every target for a few seconds.
# `make fuzz`: each target for FUZZ_RUNS inputs -> bench/results/fuzz.json.
# `make test-sanitize`: the unit and host tiers of an ASan+UBSan build (KATA_SANITIZE).
FUZZ_BUILD ?= build-fuzz
ASAN_BUILD ?= build-asan
FUZZ_RUNS ?= 100000
.PHONY: fuzz fuzz-build test-sanitize

fuzz-build: deps
	@/usr/bin/python3 tests/fuzz/run.py --build-dir $(FUZZ_BUILD) --jobs $(JOBS) --build-only

fuzz: deps
	@/usr/bin/python3 tests/fuzz/run.py --build-dir $(FUZZ_BUILD) --jobs $(JOBS) --runs $(FUZZ_RUNS)

$(ASAN_BUILD)/CMakeCache.txt:
	@cmake -S . -B $(ASAN_BUILD) -DKATA_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g" >/dev/null

sanitize: deps $(ASAN_BUILD)/CMakeCache.txt
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target kata-agent agent-ctl unit-tests novsock python-stubs \
	  2>&1 | grep -vE '^\[|^(make|gmake)\[|Scanning|Built target' || true
	@test -x $(ASAN_BUILD)/bin/kata-agent && test -x $(ASAN_BUILD)/bin/unit-tests

# Leak checking on the unit tier only: the host tier's agents are ended by a signal with
# their process-wide state still allocated, so there ASan and UBSan report errors (use
# after free, overflows, undefined behaviour), which fail the test (katatest.HostAgent).
test-sanitize: sanitize
	@cd $(ASAN_BUILD) && export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 && \
	  ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 900 -j1 -L '^unit$$' && \
	  ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure --timeout 900 -j1 -L '^host$$'

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD)
