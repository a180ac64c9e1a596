# Developer targets. The venv is yours: activate one first (see CONTRIBUTING.md).
PY ?= python

.PHONY: build build-debug test test-slow bench bench-quick lint cargo-test clean

BUILD_DEPS = "setuptools>=77" "Cython>=3.0.10" wheel "picows==2.3.1"

build:            ## editable install of both distributions, Rust in release mode
	$(PY) -m pip install $(BUILD_DEPS)
	$(PY) -m pip install -e ./rust
	$(PY) -m pip install -e ".[test]" --no-build-isolation

build-debug:      ## Cython with bounds checks and line tracing (for coverage / gdb)
	$(PY) -m pip install $(BUILD_DEPS)
	ODDSWIRE_CYTHON_DEBUG=1 $(PY) -m pip install -e ".[test]" --no-build-isolation

test:             ## the default suite (hypothesis profile "fast")
	$(PY) -m pytest

test-slow:        ## the same suite with the "slow" hypothesis profile (5,000 examples)
	ODDSWIRE_HYPOTHESIS=slow $(PY) -m pytest

# Cargo honours CARGO_TARGET_DIR from the environment (.ci/run sets it), like pip install ./rust.
cargo-test:       ## plain-Rust unit tests of the native core
	cd rust && cargo test --release

# GC stays on, as users run it. `oddswire bench` runs the same suites with a progress bar.
bench:            ## pytest-benchmark suites; ends with the results table (markdown, for the README)
	$(PY) -m pytest benchmarks

bench-quick:      ## every benchmark at a tenth of its size, with the chart (a few minutes)
	$(PY) -m oddswire bench --quick --plot docs/bench-quick.png

# stubtest checks the installed compiled modules against their .pyi: build first.
lint:             ## ruff, mypy (strict), stubtest of the compiled modules, rustfmt, clippy
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m mypy.stubtest oddswire._framing oddswire._metrics oddswire._databet oddswire._wire oddswire._tech55 oddswire_native --allowlist stubtest-allowlist.txt
	cd rust && cargo fmt --check
	cd rust && cargo clippy --release --all-targets -- -D warnings

clean:
	rm -rf build dist src/*.egg-info ext/oddswire/*.c src/oddswire/*.so rust/target
