# ferry: two commands do everything on a fresh Debian 12 machine.
#   make demo   install what is missing, build, run the phones job on a throwaway database
#   make test   install what is missing, build, run all tests against a real PostgreSQL 15 (and the Citus
#               tier when Citus is installed; it says so when it is not)
#   make test-citus  the Citus tier alone: a coordinator and two workers from an installed Citus
#   make bench  the 1,000,000-contact phones benchmark, the 1,000,000-row CSV import benchmark, customers and
#               service-requests on 500,000 projects and 1,000,000 requests, and the application's naive rows
#               normalized (replace_naive, then in place without the legacy column) (release build)
#   make bench-citus  phones apply (--jobs 1 and 2) on 1,000,000 contacts on a local 3-node Citus against a naive INSERT … SELECT,
#               with the same on plain PostgreSQL beside it (needs an installed Citus)
#   make bench-one-tenant  one tenant's phones (replace_naive and in place) by one writer and by two (--jobs 2)
#   make report-check  render the HTML plan report in headless Chromium and save a screenshot
#   make fuzz   build the libFuzzer targets and run each for FUZZ_SECONDS (default 60)
#   make man    regenerate docs/man/ferry.1 from the command definitions (ArgumentParser's generate-manual)
#   make format format the Swift code with the toolchain's swift-format (.swift-format: 120 columns)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

.PHONY: all deps build release demo test test-citus bench bench-import bench-one-tenant bench-jobs bench-naive bench-citus bench-compare bench-compare-import samples report-check fuzz man format clean

all: build

deps:
	@scripts/install-deps.sh
	@scripts/libphonenumber.sh

build: deps
	swift build

release: deps
	swift build -c release

demo: build
	scripts/with-cluster.sh scripts/demo.sh

test: deps
	scripts/with-cluster.sh scripts/test.sh

test-citus: deps
	@scripts/citus.sh available || { echo "Citus is not installed for PostgreSQL 15: the Citus tier cannot run here" >&2; exit 1; }
	swift build --build-tests
	scripts/with-cluster.sh --citus scripts/test-citus.sh

bench: release
	@scripts/install-deps.sh bc pgloader
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench.sh
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-import.sh
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-jobs.sh
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-naive.sh

bench-import: release
	@scripts/install-deps.sh bc pgloader
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-import.sh

bench-naive: release
	@scripts/install-deps.sh bc
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-naive.sh

bench-citus: release
	@scripts/install-deps.sh bc
	@scripts/citus.sh available || { echo "Citus is not installed for PostgreSQL 15: make bench-citus needs it" >&2; exit 1; }
	FERRY=.build/release/ferry scripts/with-cluster.sh --citus scripts/bench-citus.sh

# One tenant written by one writer and by two (--jobs 2 divides the tenant's contacts).
bench-one-tenant: release
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-one-tenant.sh

bench-jobs: release
	@scripts/install-deps.sh bc
	FERRY=.build/release/ferry scripts/with-cluster.sh scripts/bench-jobs.sh

# Old binary against new on the phones benchmark: make bench-compare BASE=<commit> (default: HEAD~1).
BASE ?= HEAD~1
bench-compare: release
	@scripts/install-deps.sh bc
	scripts/build-at.sh $(BASE) /tmp/ferry-bench-base
	FERRY_OLD=/tmp/ferry-bench-base/.build/release/ferry FERRY=.build/release/ferry \
		scripts/with-cluster.sh scripts/bench-compare.sh

# Old binary against new on the CSV import: make bench-compare-import BASE=<commit> (default: HEAD~1).
bench-compare-import: release
	@scripts/install-deps.sh bc
	scripts/build-at.sh $(BASE) /tmp/ferry-bench-base
	FERRY_OLD=/tmp/ferry-bench-base/.build/release/ferry FERRY=.build/release/ferry \
		scripts/with-cluster.sh scripts/bench-compare-import.sh

report-check: build
	@scripts/install-deps.sh chromium fonts-dejavu-core
	scripts/with-cluster.sh scripts/report-check.sh

fuzz: deps
	scripts/fuzz.sh

format:
	swift format format --in-place --parallel --recursive Sources Tests Fuzz Package.swift

man: build
	swift package --allow-writing-to-package-directory generate-manual --configuration debug --date "$$(git log -1 --format=%cs)"
	mkdir -p docs/man && cp .build/plugins/GenerateManual/outputs/ferry/ferry.1 docs/man/ferry.1

samples: deps
	scripts/with-cluster.sh scripts/make-samples.sh

clean:
	rm -rf .build .deps
