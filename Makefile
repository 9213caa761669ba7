# SPDX-License-Identifier: GPL-2.0-or-later
# kvmmigfs build.  make; make check; make install [PREFIX=/usr/local DESTDIR=]

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/kvmmigfs
LIBDIR ?= $(PREFIX)/lib
FILTERDIR ?= $(LIBDIR)/kvmmigfs
FILTER := nbd/nbdkit-kvmmigfs-zeroscan-filter.so
CRCTOOL := nbd/kvmmigfs-crc
COPYTOOL := nbd/kvmmigfs-copy

CC ?= cc
PKGS := fuse3 libvirt libnbd libxml-2.0 inih zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
CHECK_CFLAGS := $(shell pkg-config --cflags check)
CHECK_LIBS := $(shell pkg-config --libs check)

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter -Wvla -Wno-format-truncation -Werror=implicit
# DEVELOPER=1 (as in CI): warnings are errors.
ifeq ($(DEVELOPER),1)
WARN += -Werror
endif
# SANITIZE=1: AddressSanitizer and UBSan.
ifeq ($(SANITIZE),1)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(SAN) $(PKG_CFLAGS) $(CFLAGS) \
	-DKVMMIGFS_ZEROSCAN='"$(FILTERDIR)/nbdkit-kvmmigfs-zeroscan-filter.so"' \
	-DKVMMIGFS_CRC='"$(FILTERDIR)/kvmmigfs-crc"' \
	-DKVMMIGFS_COPY='"$(FILTERDIR)/kvmmigfs-copy"'
ALL_LDFLAGS := -pthread $(SAN) $(LDFLAGS)

COMMON_SRC := common/error.c common/strvec.c
NBD_SRC := nbd/extents.c nbd/hostcmd.c \
	nbd/server.c nbd/connection.c nbd/read.c nbd/write.c nbd/status.c \
	nbd/nbdkit-file.c nbd/qemu-nbd.c nbd/copy.c nbd/crc.c nbd/rate.c
STAGE_SRC := fs/stage/names.c fs/stage/folder.c fs/stage/recover.c \
	fs/stage/handle.c fs/stage/xml.c fs/stage/write.c fs/stage/volume.c \
	fs/stage/complete.c
CORE_SRC := fs/hosts.c fs/path.c fs/domxml.c fs/domneeds.c fs/virt.c fs/virt-pool.c \
	fs/virt-guest.c fs/virt-migrate.c fs/preflight.c fs/log.c $(STAGE_SRC) \
	fs/record.c fs/host-libvirt.c fs/status.c fs/diskcrc.c fs/verify.c \
	fs/rewrite.c \
	$(COMMON_SRC) $(NBD_SRC)
FUSE_SRC := fs/ops.c fs/files.c fs/move.c fs/forward.c fs/direct.c fs/main.c
CORE_OBJ := $(CORE_SRC:.c=.o)
FUSE_OBJ := $(FUSE_SRC:.c=.o)

UNIT_SRC := tests/check_main.c tests/check_hosts.c tests/check_path.c \
	tests/check_domxml.c tests/check_extents.c tests/check_hostcmd.c \
	tests/check_rewrite.c tests/check_copy.c \
	tests/check_endpoint.c tests/check_record.c tests/check_stage.c \
	tests/check_status.c tests/check_crc.c tests/check_virt.c \
	tests/fakehost.c
UNIT_OBJ := $(UNIT_SRC:.c=.o)

HEADERS := $(wildcard common/*.h fs/*.h fs/stage/*.h nbd/*.h tests/*.h)

.PHONY: all check check-unit check-e2e check-lvm check-sanitize check-valgrind \
	check-fuzz fuzz \
	check-format format \
	install uninstall clean deps demo bench

all: kvmmigfs $(FILTER) $(CRCTOOL) $(COPYTOOL) tests/listdisks

# The zero-scan filter, loaded by nbdkit on the hosts (nbd/zeroscan.c).
$(FILTER): nbd/zeroscan.c
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -fPIC -shared -o $@ $<

# The checksummer, run on the hosts through their shell (nbd/kvmmigfs-crc.c).
$(CRCTOOL): nbd/kvmmigfs-crc.o nbd/crc.o common/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs libnbd zlib)

# The direct path's copier, run on target hosts (nbd/kvmmigfs-copy.c).
$(COPYTOOL): nbd/kvmmigfs-copy.o $(NBD_SRC:.c=.o) $(COMMON_SRC:.c=.o)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs libnbd zlib)

kvmmigfs: $(CORE_OBJ) $(FUSE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

tests/check_kvmmigfs: $(UNIT_OBJ) $(CORE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS)

# The disks the mount lists for a domain XML, for the end-to-end tests
# (tests/e2e/lib.sh host_disks): the same code as the mount's.
tests/listdisks: tests/listdisks.o $(CORE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

tests/%.o: tests/%.c $(HEADERS)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

%.o: %.c $(HEADERS)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Everything: unit suites, then end-to-end tests on real test hosts.
check: check-unit check-fuzz check-e2e check-lvm check-sanitize

check-unit: tests/check_kvmmigfs $(FILTER)
	tests/check_kvmmigfs

# A libFuzzer target (clang) over domain XML, paths, disk names and hosts
# files, with ASan and UBSan; check-fuzz runs it FUZZ_SECONDS from the seeds.
FUZZ_SRC := tests/fuzz.c fs/domxml.c fs/rewrite.c fs/path.c fs/hosts.c \
	common/error.c common/strvec.c nbd/hostcmd.c nbd/rate.c
FUZZ_SECONDS ?= 60
FUZZ_LIBS := libxml-2.0 inih

tests/fuzz_kvmmigfs: $(FUZZ_SRC) $(HEADERS)
	clang -std=gnu11 -D_GNU_SOURCE -g -O1 \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		$(shell pkg-config --cflags $(FUZZ_LIBS)) -o $@ $(FUZZ_SRC) \
		$(shell pkg-config --libs $(FUZZ_LIBS))

fuzz: tests/fuzz_kvmmigfs

check-fuzz: tests/fuzz_kvmmigfs
	d=$$(mktemp -d) && \
	tests/fuzz_kvmmigfs -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 \
		-artifact_prefix=$$d/ -print_final_stats=0 $$d tests/fuzz-seeds; \
	r=$$?; [ $$r = 0 ] || cp $$d/crash-* $$d/leak-* $$d/oom-* $$d/timeout-* . 2>/dev/null; \
	rm -rf $$d; exit $$r

check-e2e: kvmmigfs $(FILTER) $(CRCTOOL) $(COPYTOOL) tests/listdisks
	tests/e2e/run

# Logical volumes on emulated Debian hosts (tools/lvmhosts: the image is
# built with debootstrap once and cached).
check-lvm: kvmmigfs $(FILTER) $(CRCTOOL) $(COPYTOOL) tests/listdisks
	tools/lvmhosts build || tools/lvmhosts build # a second go at the mirror
	tests/e2e/run --lvm

# The unit and end-to-end suites against an ASan/UBSan build, made in a
# copy of the tree (.sanitize/) so that the normal build stays as it is.
# Any sanitizer report aborts the process; tests/e2e/run also fails if a
# log of the daemon holds one.
SAN_ENV := ASAN_OPTIONS=abort_on_error=1:detect_leaks=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
check-sanitize:
	rm -rf .sanitize && mkdir .sanitize
	cp -r common fs nbd tests tools Makefile README.md LICENSE .sanitize/
	$(MAKE) -C .sanitize SANITIZE=1 DEVELOPER=$(DEVELOPER) \
		kvmmigfs $(FILTER) $(CRCTOOL) $(COPYTOOL) tests/check_kvmmigfs tests/listdisks
	cd .sanitize && ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/check_kvmmigfs
	cd .sanitize && $(SAN_ENV) tests/e2e/run

check-valgrind: tests/check_kvmmigfs $(FILTER)
	CK_FORK=no valgrind --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite tests/check_kvmmigfs

check-format:
	clang-format --dry-run --Werror $(CORE_SRC) $(FUSE_SRC) $(UNIT_SRC) \
		tests/fuzz.c tests/listdisks.c nbd/zeroscan.c nbd/kvmmigfs-crc.c nbd/kvmmigfs-copy.c $(HEADERS)

format:
	clang-format -i $(CORE_SRC) $(FUSE_SRC) $(UNIT_SRC) tests/fuzz.c \
		tests/listdisks.c nbd/zeroscan.c nbd/kvmmigfs-crc.c nbd/kvmmigfs-copy.c $(HEADERS)

# Install the build and test dependencies (Debian; needs root).
deps:
	tools/install-deps

# The main job: two local test hosts, a guest migrated between them.
demo: kvmmigfs $(FILTER)
	tools/demo

# Copy speed against nbdcopy and dd | ssh dd, a live move against virsh
# migrate (see tools/bench); then a 100 Mbit/s link against dd | gzip | ssh
# (tools/bench-link).
bench: kvmmigfs $(FILTER) $(CRCTOOL) $(COPYTOOL)
	tools/bench
	tools/bench-link

install: kvmmigfs $(FILTER) $(CRCTOOL) $(COPYTOOL)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(FILTERDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 755 kvmmigfs tools/kvmmigfs-status tools/kvmmigfs-hosts $(DESTDIR)$(BINDIR)/
	install -m 755 $(FILTER) $(CRCTOOL) $(COPYTOOL) $(DESTDIR)$(FILTERDIR)/
	install -m 644 tools/kvmmigfs.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 tools/kvmmigfs-status.1 tools/kvmmigfs-hosts.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 README.md LICENSE $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kvmmigfs $(DESTDIR)$(BINDIR)/kvmmigfs-status \
		$(DESTDIR)$(BINDIR)/kvmmigfs-hosts \
		$(DESTDIR)$(MANDIR)/man8/kvmmigfs.8 \
		$(DESTDIR)$(MANDIR)/man1/kvmmigfs-status.1 \
		$(DESTDIR)$(MANDIR)/man1/kvmmigfs-hosts.1
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(FILTERDIR)

clean:
	rm -f kvmmigfs tests/check_kvmmigfs tests/fuzz_kvmmigfs tests/listdisks \
		common/*.o fs/*.o fs/stage/*.o nbd/*.o tests/*.o $(FILTER) $(CRCTOOL) $(COPYTOOL)
	rm -rf .sanitize
