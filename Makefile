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
# Files are found by wildcard: shared/*.c is the common library, cloudd/*.c
# and deviced/*.c are the daemons (their main() lives in cloudd.c, deviced.c
# and dcctl.c), tests/unit/test_*.c are cmocka binaries, tests/bench/*.c are
# benchmarks, tools/*.c are standalone tools.

PKGS	:= libuv nanomsg libprotobuf-c sqlite3 libpq inih openblas libsodium libsystemd libmicrohttpd
BUILD	?= build
BIN	?= bin
OBJ	:= $(BUILD)/obj
GEN	:= $(BUILD)/gen
OPT	?= -O2
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# A missing package must stop the build with pkg-config's own message, not
# yield empty flags. The targets that install the packages first (and then
# re-enter make) are exempt.
DEPS_GOALS := deps check demo sanitize loadtest bench eval eval-dp clean fuzz
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

SHARED_SRC  := $(wildcard shared/*.c)
CLOUDD_SRC  := $(filter-out cloudd/cloudd.c cloudd/dcctl.c,$(wildcard cloudd/*.c))
DEVICED_SRC := $(filter-out deviced/deviced.c,$(wildcard deviced/*.c))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
BENCH_SRC   := $(wildcard tests/bench/*.c)
TOOL_SRC    := $(wildcard tools/*.c)

obj = $(patsubst %.c,$(OBJ)/%.o,$(1))
LIBSHARED  := $(BUILD)/libdcclshared.a
LIBCLOUDD  := $(BUILD)/libcloudd.a
LIBDEVICED := $(BUILD)/libdeviced.a

UNIT_BIN  := $(patsubst tests/unit/%.c,$(BIN)/%,$(UNIT_SRC))
BENCH_BIN := $(patsubst tests/bench/%.c,$(BIN)/%,$(BENCH_SRC))
TOOL_BIN  := $(patsubst tools/%.c,$(BIN)/%,$(TOOL_SRC))
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

# 1,000 authenticated devices on loopback; p50/p99 per request type.
loadtest: deps
	@$(MAKE) --no-print-directory all $(BIN)/loadtest
	@sh tests/bench/loadtest.sh

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh scripts/bench.sh

eval: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval.sh ../shared/data/ml-latest-small

eval-dp: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/eval-dp.sh ../shared/data/ml-latest-small

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

LIBS := $(LIBCLOUDD) $(LIBDEVICED) $(LIBSHARED)

$(BIN)/cloudd: $(OBJ)/cloudd/cloudd.o $(LIBCLOUDD) $(LIBSHARED)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/dcctl: $(OBJ)/cloudd/dcctl.o $(LIBCLOUDD) $(LIBSHARED)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/deviced: $(OBJ)/deviced/deviced.o $(LIBDEVICED) $(LIBSHARED)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/test_%: $(OBJ)/tests/unit/test_%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(TESTLIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/tests/bench/%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BIN)/%: $(OBJ)/tools/%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# --- fuzzing (libFuzzer, clang) ----------------------------------------------
# make fuzz builds every fuzz/fuzz_*.c harness with clang, ASan and UBSan
# in build/fuzz (the libraries too) and runs each for FUZZ_SECONDS on a copy
# of its seed corpus fuzz/corpus/<name>/ (scripts/fuzz.sh). It installs
# clang and libclang-rt-14-dev itself when they are missing.
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN   := $(patsubst fuzz/%.c,$(BIN)/%,$(FUZZ_SRC))
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

$(BIN)/fuzz_%: $(OBJ)/fuzz/fuzz_%.o $(LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBS) $(LDLIBS)

clean:
	rm -rf build bin

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

include mk/install.mk
