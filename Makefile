# termagent: build, test, benchmark and fuzz the terminal agent.
# `make help` lists the targets.

GO        ?= go
# The version stamped into the programs (termagent's software_version): the
# nearest v* tag, e.g. v0.1.0, or v0.1.0-3-gabc1234 three commits later,
# with -dirty for uncommitted changes. Without any v* tag (or outside git)
# it falls back to v0.0.0-gHASH (v0.0.0-unknown), never a bare hash.
VERSION   ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || \
                echo "v0.0.0-$$(git describe --always --dirty 2>/dev/null | sed 's/^/g/' | grep . || echo unknown)")
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
TESTFLAGS ?=

export CGO_ENABLED = 1

.PHONY: all help build test vet fmt-check tidy-check bench fuzz demo clean
.PHONY: arm arm64 test-arm test-arm64 footprint dist faults rootfs image system-test

# Cross-builds for the terminal: static, stripped, cgo through a C cross
# compiler. `make arm CC=...` (or ARM_CC= / ARM64_CC=) points them at a vendor
# SDK's compiler; a CC from the environment is ignored on purpose, so a host
# CC=gcc cannot leak into an ARM build. See README "Building for the device".
ARM_CC    ?= arm-linux-gnueabihf-gcc
ARM64_CC  ?= aarch64-linux-gnu-gcc
ifeq ($(origin CC),command line)
ARM_CC    := $(CC)
ARM64_CC  := $(CC)
endif
EXTLDFLAGS ?= -static
DIST      := dist
CROSS_ENV := GO='$(GO)' VERSION='$(VERSION)' ARM_CC='$(ARM_CC)' ARM64_CC='$(ARM64_CC)' EXTLDFLAGS='$(EXTLDFLAGS)'
CROSS     := $(CROSS_ENV) ./scripts/cross.sh
# What `make arm`/`arm64` build, and what `make test-arm`/`test-arm64` run under qemu-user.
CROSS_CMDS ?= ./cmd/...
ARM_TEST_PKGS ?= ./protocol/... ./store/... ./hal/... ./agent/... ./cmd/termagent

all: build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build termagent, termsim and termserver for this machine into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

vet: ## go vet every package
	$(GO) vet ./...

tidy-check: ## fail if go mod tidy would change go.mod or go.sum
	@$(GO) mod tidy -diff >/dev/null || { echo 'go mod tidy would change go.mod/go.sum:'; $(GO) mod tidy -diff; exit 1; }

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: vet fmt-check tidy-check ## vet, gofmt and go.mod tidiness checks, and every test under the race detector
	$(GO) test -race -count=1 -timeout 15m $(TESTFLAGS) ./...

bench: ## run every benchmark; each prints its figures and its same-run baseline ratio
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

faults: ## full fault and hostile-server suites (TestFault*, TestHostile*), then their table
	./scripts/faults.sh

demo: ## server, agent and simulated hardware on loopback, with a scenario
	./scripts/demo.sh

arm: ## static ARMv7 hard-float termagent, termsim, termserver into dist/linux-armv7/
	$(CROSS) armv7 $(DIST)/linux-armv7 $(CROSS_CMDS)

arm64: ## static ARM64 termagent, termsim, termserver into dist/linux-arm64/
	$(CROSS) arm64 $(DIST)/linux-arm64 $(CROSS_CMDS)

test-arm: ## cross-compiled tests and an end-to-end run of the ARMv7 termagent under qemu-arm
	$(CROSS_ENV) ./scripts/test-arm.sh armv7 $(ARM_TEST_PKGS)

test-arm64: ## cross-compiled tests and an end-to-end run of the ARM64 termagent under qemu-aarch64
	$(CROSS_ENV) ./scripts/test-arm.sh arm64 $(ARM_TEST_PKGS)

footprint: ## memory, idle CPU and start-up time of termagent, on amd64 and ARM64 under qemu
	$(CROSS_ENV) ./scripts/footprint.sh

dist: arm arm64 ## arm + arm64, then one install tarball per architecture in dist/
	./scripts/dist.sh $(DIST) $(VERSION) linux-armv7 linux-arm64

# The device-image targets: ARCH=arm64 (default) or armv7.
ARCH      ?= arm64
ROOTFS     = $(DIST)/termagent-rootfs-$(VERSION)-linux-$(ARCH).tar.gz
# Downloaded kernels, BusyBox and built modules are kept here between runs.
IMAGE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/termagent-image
SYSTEM_TEST_ARCHS ?= arm64 armv7
# The packages whose kernel-interface tests (uinput, gpio-sim) the system test runs inside the guest.
KERNEL_TEST_PKGS ?= ./hal/evdev ./hal/wiegand

rootfs: ## the files a device image needs, as a tarball for Buildroot/Yocto: dist/termagent-rootfs-*-linux-$(ARCH).tar.gz
	$(MAKE) $(if $(filter armv7,$(ARCH)),arm,$(ARCH)) CROSS_CMDS=./cmd/termagent
	./scripts/rootfs.sh $(ARCH) $(DIST) $(VERSION)

image: rootfs ## a bootable QEMU virt test image (Debian kernel, BusyBox init, the rootfs tarball) in dist/image-linux-$(ARCH)/
	IMAGE_CACHE='$(IMAGE_CACHE)' ./scripts/image.sh $(ARCH) $(ROOTFS) $(DIST)/image-linux-$(ARCH)

system-test: ## both architectures' images under qemu-system: push/swipe/relay, kill, GPIO door, power cuts, input drivers on uinput/gpio-sim
	for a in $(SYSTEM_TEST_ARCHS); do $(MAKE) image ARCH=$$a || exit 1; done
	for a in $(SYSTEM_TEST_ARCHS); do $(CROSS) -t $$a $(DIST)/kerneltests-linux-$$a $(KERNEL_TEST_PKGS) || exit 1; done
	$(GO) build -o $(DIST)/host/ ./cmd/termserver ./cmd/termsim
	IMAGE_CACHE='$(IMAGE_CACHE)' ./scripts/system-test.sh $(DIST) $(SYSTEM_TEST_ARCHS)

clean: ## remove build output
	rm -rf $(BIN) dist
