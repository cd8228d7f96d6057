# Entry points for a fresh Debian machine: `make demo` and `make test`.
# CMake does the building; this file installs dependencies and wires steps.

BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2
# make install: where to (DESTDIR= stages it elsewhere, as packagers do).
PREFIX ?= /usr/local
SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

.PHONY: all deps build build-asan test test-fast check-format check-layout format demo bench \
	install install-strip package clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOKET_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# The whole suite, then again under AddressSanitizer and UBSan.
test: check-format check-layout build build-asan
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

check-format: deps
	@bad=$$(for f in $(SOURCES); do clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not formatted (run make format):"; echo "$$bad"; exit 1; fi

# The includes between parts run one way (README.md, Layout).
check-layout:
	@scripts/check-layout.sh

format:
	clang-format -i $(SOURCES)

demo: build
	scripts/demo.sh $(BUILD)

bench: build
	bench/import $(BUILD)

# Installs what is built, and builds what is not, without installing any
# Debian package: the build dependencies must be there already (make build,
# or scripts/deps.sh). The prefix is set at configure time, so that the
# unit and the man pages name the paths installed to. As GNU says, install
# keeps the debug information and install-strip drops it.
install install-strip:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) $(if $(filter install-strip,$@),--strip)

# The Debian package (and its -dbgsym), from the RelWithDebInfo build:
# build/loket_VERSION_ARCH.deb. Its prefix is /usr whatever PREFIX is.
package: build
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
