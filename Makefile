# rapid - the two commands a newcomer needs:
#   make demo    install dependencies if missing, build, run a night of the
#                pipeline on a small simulated survey (scripts/demo.sh)
#   make test    build with warnings as errors, run every test, then run them
#                all again under AddressSanitizer + UBSan, and check that the
#                portable build (no clones, intrinsics or fast-path flags)
#                makes the same reference image bit for bit
# and, for measurements:
#   make bench   optimised build + bench/run.sh (figures for docs/PERFORMANCE.md)
# and to put `rapid` on the PATH:
#   make install [PREFIX=/usr/local]   installs PREFIX/bin/rapid and the docs
#                in PREFIX/share/doc/rapid

MAKEFLAGS += --no-print-directory

JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE  ?= cmake
CTEST  ?= ctest
BUILD  ?= build
ASAN   ?= build-asan
PORTABLE ?= build-portable
BENCHB ?= build-bench
RAPID_WORK ?= $(CURDIR)/work
PREFIX ?= /usr/local

.PHONY: all deps build demo test test-plain test-asan test-portable bench install clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(BUILD) -DRAPID_WERROR=ON >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j$(JOBS)

demo: build
	@RAPID_WORK="$(RAPID_WORK)" bash scripts/demo.sh "$(BUILD)/cli/rapid"

test: test-plain test-asan test-portable

test-plain: build
	cd $(BUILD) && $(CTEST) --output-on-failure -j$(JOBS)

test-asan: deps
	$(CMAKE) -S . -B $(ASAN) -DRAPID_WERROR=ON -DRAPID_SANITIZE=ON \
	    -DCMAKE_BUILD_TYPE=Debug >/dev/null
	$(CMAKE) --build $(ASAN) -j$(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(CTEST) --output-on-failure -j$(JOBS)

test-portable: build
	JOBS=$(JOBS) bash scripts/check-portable.sh $(BUILD) $(PORTABLE)

bench:
	@bash scripts/install-deps.sh --bench
	$(CMAKE) -S . -B $(BENCHB) -DRAPID_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
	$(CMAKE) --build $(BENCHB) -j$(JOBS)
	bash bench/run.sh $(BENCHB)

install: build
	$(CMAKE) --install $(BUILD) --prefix "$(PREFIX)"

clean:
	rm -rf $(BUILD) $(ASAN) $(PORTABLE) $(BENCHB)
