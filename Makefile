# OpenMPNS. `make test` is what CI runs; `make demo` shows the whole path.
GO        ?= go
# fyne reads the locale from LANG; "C" makes it log an error on every run.
export LANG := en_US.UTF-8
BIN       := bin
FUZZTIME  ?= 30s
FUZZMINIMIZE ?= 60s
# The CLI builds without cgo, except on macOS, where the UI toolkit it renders tiles
# with (fyne) needs cgo.
ifeq ($(shell uname -s),Darwin)
CLI_CGO   := 1
else
CLI_CGO   := 0
endif
PKGS_PURE := ./cmd/openmpns/... ./server/... ./device/... ./shared/... ./internal/... ./test/...

.PHONY: all build test cross demo cluster screenshots lint bench bench-unicast bench-peers bench-ab fuzz fuzz-short clean

all: build

## build: the pure-Go CLI (CGO_ENABLED=0 but on macOS) and, where cgo is available, the emulator
build:
	CGO_ENABLED=$(CLI_CGO) $(GO) build -o $(BIN)/openmpns ./cmd/openmpns
	@if [ -n "$$(ls cmd/openmpns-emulator/*.go 2>/dev/null)" ]; then $(GO) build -o $(BIN)/openmpns-emulator ./cmd/openmpns-emulator; fi

## test: vet, the race-enabled test suite and a few seconds of every fuzz target (a few minutes on 2 cores once built)
test:
	$(GO) vet ./...
	CGO_ENABLED=$(CLI_CGO) $(GO) build -o /dev/null ./cmd/openmpns
	# The server, device runtime and shared packages build off Linux too
	# (Windows here: the furthest from Linux; make cross builds them all).
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./server/... ./device/... ./shared/...
	$(GO) test -race -count=1 ./...
	# Under -race, shared/rawsock's calls go through the syscall package (for
	# the detector's ordering of I/O); its raw calls run here, in the packages
	# that use them.
	$(GO) test -count=1 ./shared/rawsock/ ./device/ ./shared/sender/load/ ./server/
	OPENMPNS_GATEWAY_READERS=1 $(GO) test -race -count=1 -run 'Gateway|Hostile|Forgivable|Silent|IdleDeviceThatAnswersPings|EndToEnd|Response' ./server/ ./test/
	$(MAKE) fuzz-short

## cross: the pure-Go CLI for Windows and FreeBSD, and the server, device runtime and
## shared packages with their tests (vet) for macOS, FreeBSD and Windows (the CLI for
## macOS renders tiles with fyne, which needs cgo there: build it on a Mac)
cross:
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/openmpns
	GOOS=freebsd GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/openmpns
	for os in darwin freebsd windows; do GOOS=$$os GOARCH=amd64 CGO_ENABLED=0 $(GO) vet ./server/... ./device/... ./shared/... ./test/... || exit 1; done

## demo: the phone emulator with the demo cloud service (terminal demo when there is no display)
demo: build
	scripts/demo.sh

## cluster: one service on several nodes on this machine: 3 NATS JetStream servers and 3
## openmpns nodes; prints the URLs for a fleet, a device or the emulator; Ctrl-C stops it
cluster: build
	scripts/cluster.sh

## screenshots: regenerate docs/images/*.png from the real window under Xvfb
screenshots: build
	scripts/screenshots.sh

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: a short run of the benchmark suite: Go benchmarks (codec, wire, histogram,
## the load tool, in-process end to end), then the multi-process runs: idle-connection
## memory, end to end with a fleet and the load tool, issue 10's unicast workload, and a
## sharded fleet. Full-size runs and their figures: docs/benchmarks.md (the full
## issue 10 workload: make bench-unicast)
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./shared/... ./server/... ./test/
	scripts/bench-idle.sh 1000 5000
	DEVICES=2000 DURATION=5s scripts/bench-e2e.sh
	RUNS=1 COUNT=10000 PACED=5000 scripts/bench-unicast.sh
	DEVICES=5000 SERVERS=1 scripts/bench-fleet.sh

## bench-unicast: issue 10's workload, full size (about 2 minutes): 1,000 devices, raw
## 64-byte payloads, 64 senders, 50,000 closed loop (median of 3), then 30,000 at 1,000/s;
## PROFILE_DIR=... for CPU profiles; to compare builds: BIN=... scripts/bench-unicast.sh
bench-unicast: build
	BIN=$(BIN)/openmpns scripts/bench-unicast.sh

## bench-peers: issue 10's workload beside Centrifugo v6.9.1 in one sitting, rounds
## interleaved (about 4 minutes; builds Centrifugo from the Go module proxy into bin/ once)
bench-peers: build
	BIN=$(BIN)/openmpns scripts/bench-peers.sh

## bench-ab: two builds (A and B: revisions or binaries) on issue 10's workload, run by
## run in one sitting, e.g. make bench-ab A=main~3 B=HEAD (PAIRS=8, PHASE=closed or paced)
bench-ab:
	A=$(A) B=$(B) scripts/bench-ab.sh

## fuzz: every fuzz target for FUZZTIME each (default 30s): payload XML, WebSocket frames, the HTTP push handler and the push front's parser (against net/http's), JWTs, notification log segments and records, Channel URIs handed off, image domains, JPEG markers
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseToast$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./shared/payload/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTile$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./shared/payload/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./shared/wire/
	$(GO) test -run='^$$' -fuzz='^FuzzFastMatchesJSON$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./shared/wire/
	$(GO) test -run='^$$' -fuzz='^FuzzPushHandler$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyToken$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyDeviceToken$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzFrameReader$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/
	$(GO) test -run='^$$' -fuzz='^FuzzParsePush$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./device/fleet/scenario/
	$(GO) test -run='^$$' -fuzz='^FuzzReadTargets$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./shared/sender/load/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./emulator/apps/
	$(GO) test -run='^$$' -fuzz='^FuzzParseSegment$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/store/
	$(GO) test -run='^$$' -fuzz='^FuzzNoteJSON$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/store/
	$(GO) test -run='^$$' -fuzz='^FuzzDirRecord$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./server/store/
	$(GO) test -run='^$$' -fuzz='^FuzzCheckChannelURI$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./cmd/openmpns/internal/demobackend/
	$(GO) test -run='^$$' -fuzz='^FuzzAllowed$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./emulator/images/
	$(GO) test -run='^$$' -fuzz='^FuzzJPEGLayout$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./emulator/images/

## fuzz-short: a few seconds of every fuzz target (CI); seed corpora also run in `make test`.
## A count, not a duration: Go 1.26's fuzz coordinator can fail a run spuriously with
## "context deadline exceeded" when a duration ends (go.dev/issue/75804, fixed in Go 1.27).
## Minimizing a new input is bounded by a count too (a push handler exec commits to disk).
fuzz-short:
	$(MAKE) fuzz FUZZTIME=50000x FUZZMINIMIZE=500x

## chaos: the long fault runs (30 SIGKILLs under load, a 10,000-device reconnect storm, cluster nodes and NATS servers killed under load); figures go to docs/reliability.md
chaos:
	OPENMPNS_CHAOS=long $(GO) test -count=1 -timeout=60m -v -run='^(TestCrashLoop|TestReconnectStorm|TestFullDiskRefusesWith503|TestDamagedDataFileRefusesToStart|TestOverloadLong|TestClusterFailures)$$' ./test/chaostest/

clean:
	rm -rf $(BIN)
