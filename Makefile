# Ringleader — build, test, benchmark, demo.
GO       ?= go
PKGS     := ./...
BIN      := bin
# VERSION is what the node binaries report (node --version, /cluster): the newest
# tag and the commits since, or the commit alone before the first tag.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/ringleader-go/ringleader/node.version=$(VERSION)

.PHONY: all build check-services test test-short bench chaos demo lint fmt services fuzz FORCE

all: lint test

## build: compile every package, and the node and rl binaries into bin/
build:
	$(GO) build $(PKGS)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/node ./cmd/node
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/rl ./cmd/rl

## test: vet, then every test with the race detector against real PostgreSQL
## (RL_TEST_DSN, default postgres://postgres@127.0.0.1:5432/test). With CI=true a
## missing service fails the run instead of skipping tests. This includes the chaos
## suite's CI smoke subset (test/chaos: a dual-ownership partition, a kill -9, a rolling
## upgrade from an earlier build and the check that a build without the version check
## is caught, about two and a half minutes;
## it needs root and iptables). The shop example is a Go module of its own, which
## `go test ./...` at the root does not enter: its tests run after.
test: check-services lint
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	cd examples/shop && $(GO) test -race -count=1 -timeout 10m ./...

## test-short: the tests without the race detector, for a quick loop
test-short:
	$(GO) test -count=1 $(PKGS)

## bench: the event store against a bare-INSERT baseline, commands end to end through
## NATS against their floors and a no-runtime ceiling (with and without the bank's
## handlers, low-load p50, allocations per command), group commits (AppendMany) by
## batch size, reads of $all (ReadAll), the aggregate runtime, the transport, and
## projections (throughput for K=1,2,4 and append-to-projected lag)
bench:
	$(GO) run ./bench/storebench -duration 3s
	$(GO) run ./bench/clusterbench -duration 3s -clients 32
	$(GO) test -run '^$$' -bench 'AppendMany|ReadAll' -benchtime 20000x ./eventstore/pgstore/
	$(GO) test -run '^$$' -bench . -benchtime 3s ./transport/
	$(GO) test -run '^$$' -bench 'ProjectionThroughput' -benchtime 20000x ./handlers/
	$(GO) test -run '^$$' -bench 'ProjectionLag' -benchtime 5000x ./handlers/
	$(GO) test -run '^$$' -bench 'Hot|Many|Rehydrate' -benchtime 1s ./examples/bank/
	$(GO) test -run '^$$' -bench 'IdleAggregateMemory' -benchtime 10000x ./examples/bank/

## chaos: every chaos scenario (partitions, kills, pauses, loss, restarts) against
## real node processes in network namespaces, the checkers' table, and the check that
## a build without the expected-version check is caught; needs root. CHAOS_SEED
## repeats a run's requests.
CHAOS_SEED ?= 1
chaos:
	$(GO) test -count=1 -v -run 'TestChaos|TestCheckersCatchBrokenBuild' -timeout 20m ./test/chaos/ \
		-args -chaos.all -chaos.seed=$(CHAOS_SEED)

## fuzz: fuzz the command request decoder and the event store's metadata decoder
## (FUZZTIME each, default 10m); new crashers land in testdata/fuzz/ of their package
## (keep them: `make test` replays the corpus)
FUZZTIME ?= 10m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./transport/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMetadata$$' -fuzztime $(FUZZTIME) ./eventstore/pgstore/

## demo: start NATS and a 3-node local cluster, send bank commands, show who owned
## what; runs until Ctrl-C
demo: $(BIN)/node
	./$(BIN)/node demo

$(BIN)/node: FORCE
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/node ./cmd/node

FORCE:

## lint: gofmt must have nothing to say, go vet must pass
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt wants to rewrite:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	cd examples/shop && $(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## services: make sure PostgreSQL and NATS run locally (what CI does first)
services:
	bash .ci/services

## check-services: say in one line what make test lacks, and stop, before running it
check-services:
	@bash .ci/check-services

## scale: 50 gossip members in one process on 127.0.0.1 (no store, no NATS): how long
## until all agree on one ring after a join, a graceful leave and a kill, and how many
## partitions moved against the ideal 1/N; make test runs it with 12 members
.PHONY: scale
scale:
	$(GO) test -count=1 -v -run '^TestRingAgreementAtScale$$' -timeout 5m ./cluster/ -args -scale.members=50

## soak: the bank workload on 3 node processes for SOAK_TIME (default 10m) with a
## fault every minute; prints each node's RSS, goroutines, pool connections, live
## aggregates and handler lag at the start and the end, and fails on growth that does
## not level off (needs root, as make chaos)
SOAK_TIME ?= 10m
.PHONY: soak
soak:
	$(GO) test -count=1 -v -run '^TestSoak$$' -timeout 40m ./test/chaos/ -args -chaos.soak=$(SOAK_TIME) -chaos.seed=$(CHAOS_SEED)
