# LSVD: the two commands of the README, and the steps they are made of.
#
#   make demo    set up a fresh Debian 12 machine (as root), build, and run
#                the demo on the embedded default store
#   make check   set up, build, and run every test
#
# Other targets: setup, core, qemu, guest, test-core, test-asan, test-s3,
# test-qemu, fuzz, crash, soak, bench, clean.  Everything built lands in build/
# (git-ignored).

TOP        := $(CURDIR)
BUILD      := $(TOP)/build
PREFIX     := $(BUILD)/prefix
FUZZ_SECONDS ?= 10
N          ?= 200
BACKEND    ?= dir
# the library writer cannot use s3://: there, through qemu-storage-daemon
TRANSPORT  ?= $(if $(filter s3,$(BACKEND)),nbd,lib)
DURATION   ?= 600

.PHONY: all setup core qemu guest demo check test-core test-asan test-s3 test-qemu \
	fuzz crash soak guest-fs bench clean

all: qemu

# Debian packages and QEMU's pinned source (idempotent).
setup:
	bash scripts/setup-deps.sh
	bash scripts/fetch-qemu.sh

$(BUILD)/core/build.ninja:
	meson setup $(BUILD)/core --prefix=$(PREFIX) --libdir=lib \
		-Ddefault_library=static

# lsvd-core: liblsvd.a, lsvd.pc, the lsvd command and the unit tests.
core: setup $(BUILD)/core/build.ninja
	ninja -C $(BUILD)/core install >/dev/null
	@echo "core: $(PREFIX)/bin/lsvd, $(PREFIX)/lib/liblsvd.a"

# QEMU with the lsvd driver: qemu-img, qemu-io, qemu-nbd,
# qemu-storage-daemon and qemu-system-x86_64 in build/qemu-build.
qemu: core
	bash scripts/build-qemu.sh

# The test guest of tests/qemu/test-exports.sh and test-libvirt.sh: Debian's
# kernel (apt-get download) and a busybox initramfs, in build/guest.
guest: setup
	bash scripts/guest.sh

demo: qemu
	bash scripts/demo.sh

check: qemu guest
	bash scripts/check.sh

test-core: core
	bash scripts/check.sh core

test-asan: core
	bash scripts/check.sh asan

# the S3 tests against a local Ceph RGW (scripts/rgw.sh, started and stopped)
test-s3: core
	bash scripts/check.sh s3

test-qemu: qemu guest
	bash scripts/check.sh qemu

fuzz: core
	bash scripts/run-fuzz.sh $(FUZZ_SECONDS)

# kill -9 at N random points per mode (cache kept / cache lost):
# make crash [N=200] [TRANSPORT=lib|nbd] [BACKEND=dir|s3]; nbd kills
# qemu-storage-daemon under an NBD writer (needs make qemu)
crash: $(if $(filter nbd,$(TRANSPORT)),qemu,core)
	bash scripts/crash.sh --transport $(TRANSPORT) --backend $(BACKEND) $(N)

# verified I/O through qemu-storage-daemon with periodic kills, both modes:
# make soak [DURATION=600] [BACKEND=dir|s3]
soak: qemu
	bash scripts/soak.sh --backend $(BACKEND) $(DURATION)

# ext4 in a TCG guest, QEMU killed mid-copy, cache deleted, e2fsck clean:
# RUNS rounds (default 3), consoles in build/guest-fs/
guest-fs: qemu guest
	bash tests/qemu/test-guest-fs.sh $(RUNS)

# benchmarks, at most 30 minutes (BENCH_QUICK=1: a smoke run of a few
# minutes); report in docs/bench/README.md, rows in docs/bench/results.csv
bench: qemu
	bash scripts/bench.sh

clean:
	rm -rf $(BUILD)/core $(BUILD)/asan $(BUILD)/prefix $(BUILD)/fuzz \
		$(BUILD)/qemu-build
