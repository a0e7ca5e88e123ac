# dccl: one non-recursive Makefile.
#
#   make            build bin/cloudd bin/deviced bin/dcctl (+ tools)
#   make check      install missing deps, build, run unit + integration tests
#   make demo       install missing deps, build, run the end-to-end demo
#   make sanitize   the test suite under ASan + UBSan (separate build dir)
#   make bench      benchmarks (not part of check)
#   make eval       evaluation table on ../shared/data/ml-latest-small
#   make eval-dp    accuracy cost of differential privacy (same data)
#
# Files are found by wildcard: shared/, shared/ml/ and shared/data/ are the
# common library (plumbing, model numerics, samples), cloudd/*.c and
# deviced/*.c are the daemons (their main() lives in cloudd.c, dcctl.c and
# deviced/main.c, the daemon over the device library, dccl_device.h), tests/unit/test_*.c are cmocka binaries, tests/bench/*.c are
# benchmarks, scripts/tools/ holds the offline data and evaluation programs
# (dccl-data, dccl-eval, dccl-ofa) and tests/tools/ the test client dccl-probe.

PKGS	:= libuv nanomsg libprotobuf-c sqlite3 libpq inih openblas libsodium libcrypto libsystemd libmicrohttpd
BUILD	?= build
BIN	?= bin
OBJ	:= $(BUILD)/obj
GEN	:= $(BUILD)/gen
OPT	?= -O2
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# A missing package must stop the build with pkg-config's own message, not
# yield empty flags. The targets that install the packages first (and then
# re-enter make) are exempt.
DEPS_GOALS := deps check demo sanitize loadtest bench eval eval-dp eval-base clean fuzz
ifeq ($(filter $(DEPS_GOALS),$(MAKECMDGOALS)),)
PKG_ERR := $(shell pkg-config --print-errors --exists $(PKGS) 2>&1 || echo failed)
ifneq ($(strip $(PKG_ERR)),)
$(error pkg-config: $(PKG_ERR); install the packages with "sh scripts/install-deps.sh" (see README.md, Build))
endif
endif

CC	?= cc
CFLAGS	?= $(OPT) -g
CFLAGS	+= -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	   -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
	   -I. -I$(GEN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
# Generated protobuf-c code is not ours to warn about.
GEN_CFLAGS := $(filter-out -Werror -Wshadow,$(CFLAGS))
LDFLAGS	+= $(EXTRA_LDFLAGS)
LDLIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
TESTLIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

PROTOS	:= $(wildcard proto/*.proto)
PB_C	:= $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PB_H	:= $(PB_C:.c=.h)

SHARED_SRC  := $(wildcard shared/*.c shared/ml/*.c shared/data/*.c)
CLOUDD_SRC  := $(filter-out cloudd/cloudd.c cloudd/dcctl.c,$(wildcard cloudd/*.c))
DEVICED_SRC := $(filter-out deviced/main.c,$(wildcard deviced/*.c))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
BENCH_SRC   := $(wildcard tests/bench/*.c)
TOOL_SRC    := $(wildcard scripts/tools/dccl-*.c tests/tools/dccl-*.c)
# Code the offline tools (and their unit tests) share; no daemon links it.
TOOLLIB_SRC := $(filter-out $(TOOL_SRC),$(wildcard scripts/tools/*.c))

obj = $(patsubst %.c,$(OBJ)/%.o,$(1))
LIBSHARED  := $(BUILD)/libdcclshared.a
LIBCLOUDD  := $(BUILD)/libcloudd.a
LIBDEVICED := $(BUILD)/libdeviced.a
LIBTOOLS   := $(BUILD)/libdccltools.a

UNIT_BIN  := $(patsubst tests/unit/%.c,$(BIN)/%,$(UNIT_SRC))
BENCH_BIN := $(patsubst tests/bench/%.c,$(BIN)/%,$(BENCH_SRC))
TOOL_BIN  := $(addprefix $(BIN)/,$(basename $(notdir $(TOOL_SRC))))
PROGS	  := $(BIN)/cloudd $(BIN)/deviced $(BIN)/dcctl $(TOOL_BIN)

.PHONY: loadtest fuzz fuzz-build fuzz-bins all deps check test unit integ demo sanitize bench eval eval-dp clean install
.SUFFIXES:
# Generated sources are kept, not deleted as intermediates.
.SECONDARY:

all: $(PROGS)

deps:
	@sh scripts/install-deps.sh

# check/demo/bench/eval install deps first, then re-enter make so that the
# pkg-config flags are read after the packages exist.
check: deps
	@$(MAKE) --no-print-directory all tests
	@$(MAKE) --no-print-directory cross-if-present
	@$(MAKE) --no-print-directory test

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

sanitize: deps
	@$(MAKE) --no-print-directory BUILD=build/san BIN=build/san/bin OPT=-O1 \
	    EXTRA_CFLAGS="$(SAN_FLAGS)" EXTRA_LDFLAGS="$(SAN_FLAGS)" all tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    DCCL_BIN=build/san/bin DCCL_SANITIZE=1 sh scripts/run-tests.sh

# 1,000 authenticated devices on loopback; p50/p99 per request type; then
# one round of 2,000 simulated devices within a time bound (scripts/scale.sh).
loadtest: deps
	@$(MAKE) --no-print-directory all $(BIN)/loadtest
	@sh tests/bench/loadtest.sh
	@SCALE_MAX_ROUND_S=$${SCALE_MAX_ROUND_S:-180} sh scripts/scale.sh $${SCALE_N:-2000}

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh scripts/bench.sh

eval: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval.sh ../shared/data/ml-latest-small

# The cloud side: MoMoDistill and its controls, Forward-OFA against its
# backbone (scripts/eval-cloud.sh).
.PHONY: eval-cloud
eval-cloud: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval-cloud.sh ../shared/data/ml-latest-small

# The cloud model per base-model option (scripts/eval-base.sh).
.PHONY: eval-base
eval-base: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval-base.sh ../shared/data/ml-latest-small

# Round-free (buffered) acceptance against synchronous rounds under
# heterogeneous device delays, through the daemons (scripts/eval-async.sh).
.PHONY: eval-async
eval-async: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval-async.sh ../shared/data/ml-latest-small

eval-dp: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval-dp.sh ../shared/data/ml-latest-small

# Federated selection against the default setting and per-device CV
# (scripts/eval-results.md, "Federated selection"; ctr, 3 seeds, about 8 min).
.PHONY: eval-fedsel
eval-fedsel: deps
	@$(MAKE) --no-print-directory all
	@EVAL_TASKS="$${EVAL_TASKS:-ctr}" EVAL_METHODS="$${EVAL_METHODS:-cloud,ft-cv-def,ft-cv,ft-cv-fed,mp-cv-def,mp-cv,mp-cv-fed,bias-def,bias,bias-fed,metapatch-def,metapatch,metapatch-fed}" \
	    sh scripts/eval.sh ../shared/data/ml-latest-small out/eval-fedsel

tests: $(UNIT_BIN) $(BENCH_BIN)

test:
	@DCCL_BIN=$(BIN) sh scripts/run-tests.sh

unit:
	@DCCL_BIN=$(BIN) DCCL_ONLY=unit sh scripts/run-tests.sh

integ:
	@DCCL_BIN=$(BIN) DCCL_ONLY=integ sh scripts/run-tests.sh

# --- protobuf-c generation -------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $<

$(OBJ)/$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CFLAGS) -c -o $@ $<

# --- objects ------------------------------------------------------------------
$(OBJ)/%.o: %.c | $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIBSHARED): $(call obj,$(SHARED_SRC)) $(call obj,$(PB_C))
	@rm -f $@
	ar rcs $@ $^

$(LIBCLOUDD): $(call obj,$(CLOUDD_SRC))
	@rm -f $@
	ar rcs $@ $^

$(LIBDEVICED): $(call obj,$(DEVICED_SRC))
	@rm -f $@
	ar rcs $@ $^

$(LIBTOOLS): $(call obj,$(TOOLLIB_SRC))
	@rm -f $@
	ar rcs $@ $^

LIBS := $(LIBTOOLS) $(LIBCLOUDD) $(LIBDEVICED) $(LIBSHARED)

$(BIN)/cloudd: $(OBJ)/cloudd/cloudd.o $(LIBCLOUDD) $(LIBSHARED)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/dcctl: $(OBJ)/cloudd/dcctl.o $(LIBCLOUDD) $(LIBSHARED)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/deviced: $(OBJ)/deviced/main.o $(LIBDEVICED) $(LIBSHARED)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/test_%: $(OBJ)/tests/unit/test_%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(TESTLIBS) $(LDLIBS)

# test_store is one binary split by concern: its table (test_store.c) runs
# the tests of tests/unit/store_*.c too (tests/unit/store_fixture.h).
TEST_STORE_OBJ := $(call obj,$(wildcard tests/unit/store_*.c))
$(BIN)/test_store: $(OBJ)/tests/unit/test_store.o $(TEST_STORE_OBJ) $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_STORE_OBJ) $(LIBS) $(TESTLIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/tests/bench/%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/scripts/tools/%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/tests/tools/%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# --- fuzzing (libFuzzer, clang) ----------------------------------------------
# make fuzz builds every tests/fuzz/fuzz_*.c harness with clang, ASan and UBSan
# in build/fuzz (the libraries too) and runs each for FUZZ_SECONDS on a copy
# of its seed corpus tests/fuzz/corpus/<name>/ (scripts/fuzz.sh). It installs
# clang and libclang-rt-14-dev itself when they are missing.
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(BIN)/%,$(FUZZ_SRC))
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wno-error
FUZZ_SECONDS ?= 30

fuzz: deps
	@sh scripts/fuzz.sh deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh scripts/fuzz.sh run

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build/fuzz BIN=build/fuzz/bin CC=clang \
	    OPT=-O1 EXTRA_CFLAGS="$(FUZZ_FLAGS)" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

$(BIN)/fuzz_%: $(OBJ)/tests/fuzz/fuzz_%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBS) $(LDLIBS)

# --- cross build for devices (make cross ARCH=arm64) ---------------------------
# Builds deviced, dcctl and dccl-embed (the device library's example) for a
# device architecture in build/$(ARCH)/bin with
# Debian's cross compiler and the :$(ARCH) -dev packages (multiarch); install
# them with "scripts/install-deps.sh --cross $(ARCH)" (make cross-deps).
# Only the libraries the device side uses: no libpq, libmicrohttpd or
# libsystemd (notify.c speaks the sd_notify protocol itself). CROSS_LINK:
#   static       (default) libuv, protobuf-c, SQLite, inih and libsodium
#                linked in; needs libnanomsg.so.5 (Debian ships no archive),
#                libopenblas.so.0 and glibc
#   static-blas  OpenBLAS linked in too (its Debian archive holds kernels for
#                every ARM core: 11.4 MiB more); needs libnanomsg, glibc
#   dynamic      every library shared (the smallest binary)
# Sizes and the rest of the footprint: deviced/README.md.
# make cross-check runs the emulated round (tests/integ/arm64.sh) under
# qemu-user against a native cloudd.
ARCH	?= arm64
CROSS_TRIPLET_arm64 := aarch64-linux-gnu
CROSS_TRIPLET := $(CROSS_TRIPLET_$(ARCH))
CROSS_LINK ?= static
CROSS_BUILD := build/$(ARCH)
# Objects are shared; each link mode has its own bin/ (default: bin/).
CROSS_BIN := $(CROSS_BUILD)/bin$(if $(filter-out static,$(CROSS_LINK)),-$(CROSS_LINK))
CROSS_PC  := /usr/lib/$(CROSS_TRIPLET)/pkgconfig:/usr/share/pkgconfig
# Their compiler flags (nanomsg's come from $(CROSS_ROOT), below).
CROSS_PKGS := libuv libprotobuf-c sqlite3 inih openblas libsodium libcrypto
CROSS_LIBDIR := /usr/lib/$(CROSS_TRIPLET)
# Libraries install-deps.sh unpacked (not co-installable with the host's).
DCCL_CROSS_ROOT ?= /opt/dccl-cross
CROSS_ROOT := $(DCCL_CROSS_ROOT)/$(ARCH)
CROSS_RLIB := $(CROSS_ROOT)/usr/lib/$(CROSS_TRIPLET)
# dcctl needs only its app-socket client from cloudd/ (the rest wants libpq).
CROSS_CLOUDD_SRC := cloudd/dcctl_app.c
CROSS_L := -L$(CROSS_RLIB) -L$(CROSS_LIBDIR) -L$(CROSS_LIBDIR)/openblas-pthread
CROSS_A := -luv_a -lprotobuf-c -lsqlite3 -linih -lsodium -lcrypto
CROSS_SO := -lnanomsg -lm -lpthread -ldl
ifeq ($(CROSS_LINK),static)
CROSS_LDLIBS := $(CROSS_L) -Wl,-Bstatic $(CROSS_A) -Wl,-Bdynamic -lopenblas $(CROSS_SO)
else ifeq ($(CROSS_LINK),static-blas)
CROSS_LDLIBS := $(CROSS_L) -Wl,-Bstatic $(CROSS_A) -lopenblas -Wl,-Bdynamic $(CROSS_SO)
else ifeq ($(CROSS_LINK),dynamic)
CROSS_LDLIBS := $(CROSS_L) -luv -lprotobuf-c -lsqlite3 -linih -lsodium -lcrypto -lopenblas $(CROSS_SO)
else
$(error CROSS_LINK must be static, static-blas or dynamic)
endif

.PHONY: cross cross-deps cross-check cross-if-present
cross:
	@[ -n "$(CROSS_TRIPLET)" ] || { echo "cross: unknown ARCH=$(ARCH) (known: arm64)"; exit 2; }
	@command -v $(CROSS_TRIPLET)-gcc >/dev/null || { echo "cross: $(CROSS_TRIPLET)-gcc missing; run: make cross-deps ARCH=$(ARCH)"; exit 2; }
	@PKG_CONFIG_LIBDIR=$(CROSS_PC) $(MAKE) --no-print-directory \
	    BUILD=$(CROSS_BUILD) BIN=$(CROSS_BIN) CC=$(CROSS_TRIPLET)-gcc \
	    PKGS="$(CROSS_PKGS)" \
	    EXTRA_CFLAGS="-I$(CROSS_ROOT)/usr/include -DDCCL_NO_LIBSYSTEMD $(EXTRA_CFLAGS)" \
	    LDLIBS="$(CROSS_LDLIBS)" CLOUDD_SRC="$(CROSS_CLOUDD_SRC)" \
	    $(CROSS_BIN)/deviced $(CROSS_BIN)/dcctl $(CROSS_BIN)/dccl-embed
	@$(CROSS_TRIPLET)-strip -o $(CROSS_BIN)/deviced.stripped $(CROSS_BIN)/deviced
	@$(CROSS_TRIPLET)-strip -o $(CROSS_BIN)/dcctl.stripped $(CROSS_BIN)/dcctl
	@echo "cross: $(CROSS_BIN)/deviced, dcctl ($(ARCH), $(CROSS_LINK)); needs:"
	@$(CROSS_TRIPLET)-readelf -d $(CROSS_BIN)/deviced | sed -n 's/.*(NEEDED).*\[\(.*\)\]/  \1/p'

# For make check: the arm64 build when its packages are installed (make
# cross-deps), so that tests/integ/arm64.sh runs; without them it skips.
cross-if-present:
	@if sh scripts/install-deps.sh --cross arm64 --check; then \
		$(MAKE) --no-print-directory cross ARCH=arm64; \
	else echo "check: no arm64 cross packages (make cross-deps); arm64 test skips"; fi

cross-deps:
	@sh scripts/install-deps.sh --cross $(ARCH)

cross-check: deps cross-deps
	@$(MAKE) --no-print-directory all tests
	@$(MAKE) --no-print-directory cross ARCH=$(ARCH)
	@DCCL_BIN=$(BIN) DCCL_CROSS_BIN=$(CROSS_BUILD)/bin DCCL_TESTS=$(ARCH) \
	    sh scripts/run-tests.sh

clean:
	rm -rf build bin

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# --- make install -------------------------------------------------------------
#
#   make install [PREFIX=/usr/local] [DESTDIR=]
#
# Layout (FHS; man sections follow the directories):
#   $(SBINDIR)         cloudd deviced             daemons, man section 8
#   $(BINDIR)          dcctl dccl-data dccl-probe user/admin tools, section 1
#   $(MANDIR)/man{1,5,8}
#   $(UNITDIR)         dccl-cloudd.service dccl-deviced@.service
#   $(SYSUSERSDIR)     dccl.conf (the "dccl" system user)
#   $(SYSCONFDIR)/dccl cloudd.conf deviced/example.conf deviced-{low,mid,high}.conf
#
# Configuration always goes to /etc (not $(PREFIX)/etc): the units read
# /etc/dccl, and a /usr/local install is still configured in /etc. Existing
# configuration files are never overwritten (an admin's edits survive a
# reinstall); a fresh copy is written next to them as FILE.dist.
#
# PREFIX=/usr puts units in /lib/systemd/system (Debian's
# systemdsystemunitdir) and sysusers in /usr/lib/sysusers.d; any other
# prefix uses $(PREFIX)/lib/..., which systemd also searches for
# /usr/local. The units' ExecStart= paths are rewritten to $(SBINDIR).
#
# Uses $(BIN) (where the built programs are) and builds "all" first. Nothing here runs systemctl or systemd-sysusers:
# DESTDIR installs must stay side-effect free (packagers run them in
# postinst; see cloudd(8)).

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
ifeq ($(PREFIX),/usr)
UNITDIR	?= /lib/systemd/system
else
UNITDIR	?= $(PREFIX)/lib/systemd/system
endif
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL	?= install

INST_SBIN  := cloudd deviced
INST_BIN   := dcctl dccl-data dccl-probe
INST_MAN1  := conf/man/dcctl.1
INST_MAN5  := conf/man/dccl.conf.5
INST_MAN8  := conf/man/cloudd.8 conf/man/deviced.8
INST_UNITS := conf/systemd/dccl-cloudd.service conf/systemd/dccl-deviced@.service
INST_CLASS := conf/deviced-low.conf conf/deviced-mid.conf conf/deviced-high.conf \
	      conf/deviced-metapatch.conf

# install_conf SRC DST: copy unless DST exists; then write DST.dist instead.
install_conf = if [ -e "$(2)" ]; then \
		$(INSTALL) -m 0644 "$(1)" "$(2).dist"; \
		echo "install: kept $(2); new version in $(2).dist"; \
	else $(INSTALL) -m 0644 "$(1)" "$(2)"; fi

.PHONY: install uninstall

install: all
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(BINDIR)" \
	    "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man5" \
	    "$(DESTDIR)$(MANDIR)/man8" "$(DESTDIR)$(UNITDIR)" \
	    "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(SYSCONFDIR)/dccl/deviced"
	$(INSTALL) -m 0755 $(addprefix $(BIN)/,$(INST_SBIN)) "$(DESTDIR)$(SBINDIR)"
	$(INSTALL) -m 0755 $(addprefix $(BIN)/,$(INST_BIN)) "$(DESTDIR)$(BINDIR)"
	$(INSTALL) -m 0644 $(INST_MAN1) "$(DESTDIR)$(MANDIR)/man1"
	$(INSTALL) -m 0644 $(INST_MAN5) "$(DESTDIR)$(MANDIR)/man5"
	$(INSTALL) -m 0644 $(INST_MAN8) "$(DESTDIR)$(MANDIR)/man8"
	for u in $(INST_UNITS); do \
		sed 's|/usr/local/sbin/|$(SBINDIR)/|' "$$u" >"$(DESTDIR)$(UNITDIR)/$${u##*/}" && \
		chmod 0644 "$(DESTDIR)$(UNITDIR)/$${u##*/}" || exit 1; \
	done
	$(INSTALL) -m 0644 conf/systemd/dccl.sysusers.conf "$(DESTDIR)$(SYSUSERSDIR)/dccl.conf"
	@$(call install_conf,conf/cloudd.conf,$(DESTDIR)$(SYSCONFDIR)/dccl/cloudd.conf)
	@$(call install_conf,conf/deviced.conf,$(DESTDIR)$(SYSCONFDIR)/dccl/deviced/example.conf)
	@for f in $(INST_CLASS); do \
		$(call install_conf,$$f,$(DESTDIR)$(SYSCONFDIR)/dccl/$${f##*/}) || exit 1; \
	done

uninstall:
	rm -f $(addprefix "$(DESTDIR)$(SBINDIR)"/,$(INST_SBIN)) \
	    $(addprefix "$(DESTDIR)$(BINDIR)"/,$(INST_BIN)) \
	    "$(DESTDIR)$(MANDIR)/man1/dcctl.1" "$(DESTDIR)$(MANDIR)/man5/dccl.conf.5" \
	    "$(DESTDIR)$(MANDIR)/man8/cloudd.8" "$(DESTDIR)$(MANDIR)/man8/deviced.8" \
	    "$(DESTDIR)$(UNITDIR)/dccl-cloudd.service" \
	    "$(DESTDIR)$(UNITDIR)/dccl-deviced@.service" \
	    "$(DESTDIR)$(SYSUSERSDIR)/dccl.conf"
	@echo "uninstall: left $(DESTDIR)$(SYSCONFDIR)/dccl and /var/lib/dccl in place"

# Regenerates conf/man/dccl.conf.5 from the option tables (see conf/man/gen-conf-man.sh).
.PHONY: man
man: $(BIN)/cloudd $(BIN)/deviced
	sh conf/man/gen-conf-man.sh $(BIN) >conf/man/dccl.conf.5.tmp
	mv conf/man/dccl.conf.5.tmp conf/man/dccl.conf.5
