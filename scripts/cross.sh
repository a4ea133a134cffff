#!/usr/bin/env bash
# Fully static, stripped cross-builds for the terminal (cgo, because SQLite is
# C). Used by `make arm`, `make arm64` and scripts/test-arm.sh.
#
#   scripts/cross.sh ARCH OUTDIR PKG...        build commands into OUTDIR/
#   scripts/cross.sh -t ARCH OUTDIR PKG...     build one test binary per package
#                                              into OUTDIR/<import/path>.test
#
# ARCH is armv7 (ARMv7 hard-float, GOARM=7; set GOARM=6 for an ARMv6 SoC) or
# arm64, or amd64 (the same static link for this machine).
#
# Environment (all optional):
#   ARM_CC, ARM64_CC, AMD64_CC  the C cross-compiler, with any flags a vendor SDK
#                   needs ("arm-poky-linux-gnueabi-gcc --sysroot=/opt/sdk/...");
#                   defaults: Debian's arm-linux-gnueabihf-gcc, aarch64-linux-gnu-gcc, gcc
#   EXTLDFLAGS      flags for the external linker; default -static. Set it empty
#                   for a dynamic build against an SDK that ships no libc.a.
#   VERSION         stamped into main.version (the device's software_version)
#   GO              the go command; default go
#
# Why these flags: netgo and osusergo keep the resolver and user lookups in Go
# (glibc's NSS cannot be linked statically); sqlite_omit_load_extension removes
# SQLite's dlopen, which a static binary cannot do; -trimpath keeps build paths
# out of the binary; -s -w strips it.
set -euo pipefail

tests=0
if [ "${1:-}" = "-t" ]; then
	tests=1
	shift
fi
if [ $# -lt 3 ]; then
	sed -n '2,10p' "$0" >&2
	exit 2
fi
arch=$1 out=$2
shift 2

case "$arch" in
armv7)
	export GOARCH=arm GOARM=${GOARM:-7}
	cc=${ARM_CC:-arm-linux-gnueabihf-gcc}
	;;
arm64)
	export GOARCH=arm64
	unset GOARM
	cc=${ARM64_CC:-aarch64-linux-gnu-gcc}
	;;
amd64)
	export GOARCH=amd64
	unset GOARM
	cc=${AMD64_CC:-gcc}
	;;
*)
	echo "cross.sh: unknown ARCH '$arch' (want armv7, arm64 or amd64)" >&2
	exit 2
	;;
esac

ccbin=${cc%% *}
if ! command -v "$ccbin" >/dev/null 2>&1; then
	echo "cross.sh: C compiler '$ccbin' for $arch not found." >&2
	echo "  Debian: apt-get install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross" >&2
	echo "  or point ARM_CC / ARM64_CC (make: CC=...) at your SDK's compiler." >&2
	exit 1
fi

export GOOS=linux CGO_ENABLED=1 CC="$cc"
go=${GO:-go}
version=${VERSION:-dev}
extldflags=${EXTLDFLAGS--static}
tags=netgo,osusergo,sqlite_omit_load_extension
ldflags="-s -w -X main.version=$version -linkmode external"
if [ -n "$extldflags" ]; then
	ldflags="$ldflags -extldflags '$extldflags'"
fi

mkdir -p "$out"
if [ "$tests" = 0 ]; then
	"$go" build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/" "$@"
	exit 0
fi

# One test binary per package that has tests; packages without test files are
# listed and skipped. The binary's name is its import path with / turned to _.
for pkg in $("$go" list -tags "$tags" -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "$@"); do
	name=$(echo "$pkg" | tr / _).test
	"$go" test -c -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/$name" "$pkg"
done
