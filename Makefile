# termagent: build, test, benchmark and fuzz the terminal agent.
# `make help` lists the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
TESTFLAGS ?=

export CGO_ENABLED = 1

.PHONY: all help build test vet fmt-check bench fuzz demo clean

all: build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build termagent, termsim and termserver for this machine into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

vet: ## go vet every package
	$(GO) vet ./...

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: vet fmt-check ## vet, gofmt check and every test under the race detector
	$(GO) test -race -count=1 -timeout 15m $(TESTFLAGS) ./...

bench: ## run every benchmark; each prints its figures and its same-run baseline ratio
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

demo: ## server, agent and simulated hardware on loopback, with a scenario
	./scripts/demo.sh

clean: ## remove build output
	rm -rf $(BIN) dist
