# The two commands of the README: `make test` and `make bench`. Everything else is CMake.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local

.PHONY: all configure test bench install clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@command -v cmake >/dev/null || { echo "strata: cmake is required: sudo apt-get install cmake"; exit 1; }
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

# Tests labelled long (Valgrind, clang-tidy) run with `ctest -L valgrind` / `-L lint`.
test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE long

bench: all
	cmake --build $(BUILD) --target bench-run
	cmake --build $(BUILD) --target bench-special
	cmake --build $(BUILD) --target bench-gc

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
