# SPDX-License-Identifier: GPL-2.0
#
# vhost-blk top-level Makefile.  `make help` lists the targets.

TOP       := $(abspath .)
BUILD     := $(TOP)/build
KVERS     := $(shell scripts/kernels.sh 2>/dev/null)
RUNNING   := $(shell uname -r)
# What `make` builds for: KVER=... if given, else the running kernel when
# its headers are installed, else the kernels the test suite covers.
ifneq ($(KVER),)
TARGET_KVERS := $(KVER)
else ifneq ($(wildcard /lib/modules/$(RUNNING)/build),)
TARGET_KVERS := $(RUNNING)
else
TARGET_KVERS := $(KVERS)
endif

CHECKPATCH := $(BUILD)/ksrc/checkpatch/scripts/checkpatch.pl
KERNELDOC := $(BUILD)/ksrc/checkpatch/scripts/kernel-doc

.PHONY: all help setup module modules selftests tools ksft-headers \
	check check-style clean install debug-kernel fuzz

all: module tools

help:
	@echo "make setup        install every Debian package needed (as root)"
	@echo "make              vhost_blk.ko for KVER=... / the running kernel, and tools"
	@echo "make modules      vhost_blk.ko for every tested kernel: $(KVERS)"
	@echo "make demo         boot a guest on vhost-blk in a test VM, show fio and ext4 results (~3 min)"
	@echo "make check        build all, run the whole test suite in VMs"
	@echo "make bench        benchmarks, vhost-blk against every other backend (VM, ~35 min): BENCH_ARGS=--update-doc"
	@echo "make bench-quick  a short benchmark: brd, 3 jobs, 1 repetition (VM, ~6 min)"
	@echo "make bench-guest  each backend in its own outer-VM boot on the stress bed, BENCH_REPS=3 rounds (VM, ~2-3 min a boot): BENCH_VBLK_VARIANTS= BENCH_BACKENDS="
	@echo "make stress       STRESS_BOOTS=10 boots each of vhost-blk and qsd under fio in nested guests (VM, ~3 min a boot): STRESS_ARGS="
	@echo "make check-style  checkpatch --strict, kernel-doc and sparse on the module"
	@echo "make debug-kernel the KASAN + lockdep + fault-injection 6.12 kernel"
	@echo "make e2e-debug    the launcher's end-to-end guest on the debug kernel (VM, 6-20 min): E2E_ARGS="
	@echo "make mutants      each deliberately broken module of tools/testing/mutants, in a VM of its own: its named tests must fail (VM, ~1 min a mutant): MUTANTS=\"NAME...\""
	@echo "make fuzz         fuzz the module in a VM: FUZZ_SECONDS=300 FUZZ_KERNEL=debug|6.1|6.12 FUZZ_SEED="
	@echo "make install      install vhost_blk.ko for KVER/the running kernel"

setup:
	scripts/setup-deps.sh

module:
	@test -n "$(TARGET_KVERS)" || { echo "no kernel headers found: run 'make setup' or pass KVER=" >&2; exit 1; }
	@set -e; for k in $(TARGET_KVERS); do scripts/build-module.sh $$k; done

modules:
	@test -n "$(KVERS)" || { echo "tested kernels not installed: run 'make setup'" >&2; exit 1; }
	@set -e; for k in $(KVERS); do scripts/build-module.sh $$k; done

# The kselftest harness comes from the linux-source package at build time.
ksft-headers: $(BUILD)/ksft/kselftest_harness.h

$(BUILD)/ksft/kselftest_harness.h:
	@mkdir -p $(BUILD)/ksft
	tar -xJf /usr/src/linux-source-6.12.tar.xz -C $(BUILD)/ksft --strip-components=4 \
		linux-source-6.12/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.12/tools/testing/selftests/kselftest.h

selftests: ksft-headers
	$(MAKE) -C selftests/vhost_blk O=$(BUILD)/selftests KSFT_DIR=$(BUILD)/ksft \
		UAPI=$(TOP)/include/uapi

tools:
	$(MAKE) -C tools/vhost-blk-launcher O=$(BUILD)/tools

check:
	scripts/check.sh

# A guest on vhost_blk.ko + vhost-blk-launcher in a test VM: tools/testing/e2e/demo.sh.
.PHONY: demo
demo: modules tools
	tools/testing/e2e/demo.sh

# Benchmarks (not part of make check): tools/testing/bench/run-bench.sh,
# results in build/bench/<date>/, see Documentation/benchmarks.md.
.PHONY: bench bench-quick
bench:
	tools/testing/bench/run-bench.sh $(BENCH_ARGS)

bench-quick:
	tools/testing/bench/run-bench.sh --quick $(BENCH_ARGS)

# vhost-blk-perf with no guest, against io_uring (VM, ~5 min): tools/vhost-blk-perf/run-guestless.sh
.PHONY: bench-guestless
bench-guestless:
	tools/vhost-blk-perf/run-guestless.sh $(BENCH_ARGS)

# The real-guest bed (not part of make check): tools/testing/bench-guest/run-bench-guest.sh,
# one outer VM per backend and repetition, results in build/bench-guest/<date>/.
.PHONY: bench-guest
BENCH_REPS ?= 3
bench-guest: modules tools
	BENCH_REPS=$(BENCH_REPS) tools/testing/bench-guest/run-bench-guest.sh --no-build $(BENCH_GUEST_ARGS)

# Stress (not part of make check): tools/testing/stress/run-stress.sh, one
# outer VM per boot, results in build/stress/<date>/.
.PHONY: stress
STRESS_BOOTS ?= 10
stress: modules tools
	STRESS_BOOTS=$(STRESS_BOOTS) tools/testing/stress/run-stress.sh --no-build $(STRESS_ARGS)

debug-kernel:
	tools/testing/debug-kernel/build.sh

# The launcher's end-to-end guests on the debug kernel (not part of make
# check: 6-20 minutes on a 2-CPU host): phase a without ext4, KASAN + lockdep.
.PHONY: e2e-debug
e2e-debug: debug-kernel tools
	. build/debug-kernel/current.env && scripts/build-module.sh "$$KVER" "$$KDIR" "$$KPKGVER"
	tools/testing/e2e/run-all.sh --only launcher:debug $(E2E_ARGS)

# Mutation testing (make check runs a subset): tools/testing/mutants/run-mutants.sh,
# every mutant (or MUTANTS="NAME...") and a control boot of the unmodified module.
.PHONY: mutants
mutants: selftests
	tools/testing/mutants/run-mutants.sh --control $(MUTANTS)

FUZZ_SECONDS ?= 300
fuzz: modules selftests
	tools/testing/fuzz/run-fuzz.sh --seconds $(FUZZ_SECONDS) \
		$(if $(FUZZ_KERNEL),--kernel $(FUZZ_KERNEL)) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

$(CHECKPATCH):
	@mkdir -p $(BUILD)/ksrc/checkpatch
	tar -xJf /usr/src/linux-source-6.12.tar.xz -C $(BUILD)/ksrc/checkpatch --strip-components=1 \
		linux-source-6.12/scripts/checkpatch.pl linux-source-6.12/scripts/spelling.txt \
		linux-source-6.12/scripts/const_structs.checkpatch

$(KERNELDOC):
	@mkdir -p $(BUILD)/ksrc/checkpatch
	tar -xJf /usr/src/linux-source-6.12.tar.xz -C $(BUILD)/ksrc/checkpatch --strip-components=1 \
		linux-source-6.12/scripts/kernel-doc

check-style: $(CHECKPATCH) $(KERNELDOC)
	$(CHECKPATCH) --strict --no-tree --terse -f drivers/vhost/*.[ch] include/uapi/linux/vhost_blk.h
	perl $(KERNELDOC) -none -Wall -Werror drivers/vhost/*.[ch] include/uapi/linux/vhost_blk.h
	@set -e; for k in $(KVERS); do C=2 scripts/build-module.sh $$k; done

install: module
	@set -e; for k in $(TARGET_KVERS); do \
		install -D -m 0644 $(BUILD)/$$k/vhost_blk.ko /lib/modules/$$k/updates/vhost_blk.ko; \
		depmod -a $$k; echo "installed vhost_blk.ko for $$k"; done

clean:
	rm -rf $(BUILD)
