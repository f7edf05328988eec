# Thin wrappers around scripts/setup.sh, CMake and CTest. `make run` and `make test` work
# from any state and redo only what is out of date.
PRESET ?= release
BUILD := build/$(PRESET)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
RUN_DIR := runs/quickstart

.PHONY: all setup configure build run test test-asan fuzz bench format clean

all: build

setup:
	@bash scripts/setup.sh

# Configure only when the build tree is missing; the build re-runs CMake when it must.
$(BUILD)/CMakeCache.txt:
	@cmake --preset $(PRESET) >/dev/null

configure: setup $(BUILD)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@./$(BUILD)/dln run experiments/quickstart.toml --out $(RUN_DIR) --force
	@./$(BUILD)/dln plot $(RUN_DIR)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@$(MAKE) --no-print-directory PRESET=asan test

# Every reader of user input under libFuzzer with ASan + UBSan, FUZZ_SECONDS (60) each.
fuzz: setup
	@bash scripts/fuzz.sh

# Google Benchmark cases and the PyTorch/NumPy peers on the same workloads, in one run; writes
# the table of docs/performance.md (bench/run.py; BENCH_ARGS=--no-write to only print it).
bench: setup
	@cmake --preset release -DDLN_BUILD_BENCH=ON >/dev/null
	@cmake --build build/release -j $(JOBS) --target dln dln_bench
	@/usr/bin/python3 bench/run.py $(BENCH_ARGS)

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	@rm -rf build
