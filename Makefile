# Lark: the two commands are `make run` and `make test`; everything else is a step of theirs.
SWIFT ?= swift
HOST ?= 127.0.0.1
PORT ?= 5000
VOICE ?= en_US-joe-medium
RELEASE_BIN := .build/release/lark
DEBUG_BIN := .build/debug/lark

.PHONY: setup setup-test build release run test fuzz bench bench-server bench-formats clean

## Install what is missing: Debian packages, ONNX Runtime, the default voice, the reference Piper.
setup:
	@bash scripts/setup.sh

## What the tests and benches use besides: real clients and an offline recognizer (not `make run`'s).
setup-test:
	@bash scripts/setup.sh --test

## Debug build (what the tests use).
build: setup-test
	$(SWIFT) build --build-tests

## Optimized build.
release: setup
	$(SWIFT) build -c release

## Build and start the server with the bundled voice on $(HOST):$(PORT).
run: release
	$(RELEASE_BIN) serve --host $(HOST) --port $(PORT) --model $(VOICE)

## Every test: unit tests, parity with Piper's Python package, CLI behaviour, the server, and
## the job queue on SQLite and on a throw-away PostgreSQL that scripts/with-postgres.sh starts.
## Then a few seconds of each fuzz target (`make fuzz` for longer).
test: build
	LARK_BIN=$(CURDIR)/$(DEBUG_BIN) bash scripts/with-postgres.sh $(SWIFT) test --skip-build
	FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) bash Fuzz/run.sh

TEST_FUZZ_SECONDS ?= 3
FUZZ_SECONDS ?= 60

## libFuzzer targets (Fuzz/Targets), built apart in .build-fuzz, each run for $(FUZZ_SECONDS) s.
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash Fuzz/run.sh

## Benchmarks against Piper's Python package (not part of the tests).
bench: release
	bash bench/engine

## Encoding cost of every output format (not part of the tests).
bench-formats: release
	bash bench/formats

## Lark's server against Piper's `piper.http_server` (not part of the tests).
bench-server: release
	bash bench/server

clean:
	rm -rf .build .build-fuzz out
