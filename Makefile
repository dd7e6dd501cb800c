# flowvis build.  `make` builds build/flowvis; see README.md for the rest.
#
#   make            build the binary (and nothing else)
#   make test       install missing test tools, build, run unit + integration tests
#   make check      everything CI runs: test, ASan+UBSan unit tests, fuzz replay, format
#   make bench      benchmarks (figures, not pass/fail)
#   make demo       the live demo: a 3-node cluster in network namespaces, agents,
#                   aggregator, web UI (scripts/demo.sh: DEMO_SECONDS, DEMO_MODE, ...)

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
SAN      ?=
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Wmissing-prototypes -Werror
CPPFLAGS := -std=c11 -D_GNU_SOURCE -Isrc -MMD -MP
LDLIBS   := -levent -levent_openssl -lssl -lcrypto -lyaml -ljansson -lnetfilter_conntrack -lnetfilter_log -lmnl \
            -lmicrohttpd -lcurl -lsqlite3 -lz -lpthread
ifneq ($(SAN),)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(sort $(filter-out src/cmd/%,$(wildcard src/*/*.c)))
CMD_SRC  := $(sort $(wildcard src/cmd/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CMD_OBJ  := $(CMD_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BUILD)/bench/bench_decode $(BUILD)/bench/bench_agent_poll $(BUILD)/bench/bench_store \
             $(BUILD)/bench/bench_policy

# The web UI (ui/): npm installs the packages pinned by ui/package-lock.json,
# esbuild bundles them into build/ui/ (shared by every BUILD), and
# tools/embed_assets.c turns those files into C that only the flowvis binary
# links.  See ui/README.md.
UI_OUT   := build/ui
UI_FILES := index.html app.js app.css favicon.svg
UI_SRC   := $(sort $(wildcard ui/src/*) ui/build.mjs)
UI_DEPS  := ui/node_modules/.package-lock.json

.PHONY: all test unit integration check asan-unit fuzz fuzz-replay format format-check \
        bench demo deps clean ui

all: $(BUILD)/flowvis

$(BUILD)/flowvis: $(CMD_OBJ) $(BUILD)/obj/gen/ui_assets.o $(BUILD)/libflowvis.a
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/obj/gen/ui_assets.o $(BUILD)/libflowvis.a $(LDLIBS)

# npm ci only when the lock file changed (npm rewrites the hidden lock file
# inside node_modules at every install).
$(UI_DEPS): ui/package.json ui/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: run 'make deps' (scripts/deps.sh)" >&2; exit 1; }
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(UI_OUT)/.built: $(UI_SRC) $(UI_DEPS)
	@mkdir -p $(UI_OUT)
	cd ui && node build.mjs ../$(UI_OUT)
	@touch $@

$(BUILD)/tools/embed_assets: tools/embed_assets.c src/http/assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(LDFLAGS) -o $@ $< -lz

$(BUILD)/gen/ui_assets.c: $(UI_OUT)/.built $(BUILD)/tools/embed_assets
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed_assets $@ fv_ui_assets $(addprefix $(UI_OUT)/,$(UI_FILES))

$(BUILD)/obj/gen/ui_assets.o: $(BUILD)/gen/ui_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libflowvis.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libflowvis.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(WARN) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< \
		$(BUILD)/libflowvis.a -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libflowvis.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(LDFLAGS) -o $@ $< $(BUILD)/libflowvis.a $(LDLIBS)

deps:
	@scripts/deps.sh build

# The UI alone, into build/ui/ (with ui.dir: build/ui the aggregator serves
# it from there: rebuild and reload, no restart).
ui: $(UI_OUT)/.built

# Unit tests: every tests/unit/test_*.c is one cmocka program.
unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

integration: all
	@tests/integration/run.sh

test:
	@scripts/deps.sh build dev test
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@tests/run-all.sh $(UNIT_BIN)

asan-unit:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 unit

# libFuzzer targets need clang.
FUZZ_BIN := build-fuzz/fuzz_decode
$(FUZZ_BIN): tests/fuzz/fuzz_decode.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz-replay: $(FUZZ_BIN)
	$(FUZZ_BIN) -runs=0 tests/fuzz/corpus/decode

fuzz: $(FUZZ_BIN)
	@mkdir -p build-fuzz/corpus
	$(FUZZ_BIN) -max_len=66000 -max_total_time=$${FUZZ_SECONDS:-60} build-fuzz/corpus \
		tests/fuzz/corpus/decode

FORMAT_FILES = $(shell git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 'tools/*.c')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

check: test asan-unit fuzz-replay format-check

bench:
	@scripts/deps.sh build bench
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@bench/run.sh

demo:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz ui/node_modules tests/deploy/node_modules

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d)
