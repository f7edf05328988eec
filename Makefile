# Thin wrappers around scripts/setup.sh, CMake and CTest. `make run` and `make test` work
# from any state and redo only what is out of date.
PRESET ?= release
BUILD := build/$(PRESET)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
RUN_DIR := runs/quickstart

.PHONY: all setup configure build run test test-asan bench format clean

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

bench: setup
	@cmake --preset release -DDLN_BUILD_BENCH=ON >/dev/null
	@cmake --build build/release -j $(JOBS) --target dln_bench
	@./build/release/bench/dln_bench

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	@rm -rf build
