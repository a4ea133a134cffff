#!/usr/bin/env bash
# Runs the tests on ARM under qemu-user (`make test-arm`, `make test-arm64`):
#
#   scripts/test-arm.sh armv7|arm64 [PKG...]
#       default PKG: ./protocol/... ./store/... ./hal/... ./agent/... ./cmd/termagent
#       (not cmd/termserver: its tests run the go command, absent on the target)
#
# 1. Cross-compiles one static test binary per package (scripts/cross.sh -t)
#    and runs each under qemu-arm / qemu-aarch64 in its package directory.
# 2. Cross-compiles termagent and runs it under qemu against the amd64
#    termserver and termsim on loopback (scripts/e2e.sh): a card is swiped on
#    the simulated reader and the record must reach the server, acknowledged.
#
# Environment: ARM_CC / ARM64_CC (see cross.sh), VERSION, GO,
# TEST_TIMEOUT (per package, default 5m), E2E=0 to skip step 2.
#
# Tests that cannot run under qemu-user are skipped by name in QEMU_SKIP
# below, each with its reason; they still run natively in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:?usage: test-arm.sh armv7|arm64 [PKG...]}
shift
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./protocol/... ./store/... ./hal/... ./agent/... ./cmd/termagent)
case "$arch" in
armv7) qemu=qemu-arm ;;
arm64) qemu=qemu-aarch64 ;;
*) echo "test-arm.sh: unknown ARCH '$arch' (want armv7 or arm64)" >&2; exit 2 ;;
esac
if ! command -v "$qemu" >/dev/null 2>&1; then
	echo "test-arm.sh: $qemu not found; Debian: apt-get install qemu-user" >&2
	exit 1
fi
go=${GO:-go}
timeout=${TEST_TIMEOUT:-5m}

# QEMU_SKIP: test-name regular expressions (go test -skip) that cannot pass
# under qemu-user emulation, with the reason. Keep this list short and true.
declare -A QEMU_SKIP=(
	# Re-executes its own test binary as a child (to crash it mid-write):
	# qemu-user cannot exec an ARM binary without binfmt_misc registration.
	# The file-system fault tests (store/faultfs) re-execute it too, under
	# unshare -m, to mount a tmpfs or a loop device in a private namespace.
	[termagent/store]='^(TestCrashLosesNothing|TestFaultReadOnlyFileSystemAtOpen)$'
	# The same: kills a child agent mid-message.
	[termagent/agent]='^TestFaultKilledMidBigMessage$'
	[termagent/cmd/termagent]='^(TestFaultReadOnlyStoreAtStart|TestFaultDiskFull|TestFaultReadOnlyStoreMidRun)$'
)

work=$(mktemp -d "${TMPDIR:-/tmp}/termagent-test-$arch.XXXXXX")
trap 'rm -rf "$work"' EXIT

t0=$(date +%s)
# The packages with tests, and their directories, listed once.
mapfile -t list < <("$go" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${pkgs[@]}")
[ ${#list[@]} -gt 0 ] || { echo "test-arm.sh: no package with tests in ${pkgs[*]}" >&2; exit 1; }
echo "== test-arm $arch: cross-compiling ${#list[@]} test binaries for ${pkgs[*]}"
./scripts/cross.sh -t "$arch" "$work" "${list[@]%% *}"
echo "   built in $(($(date +%s) - t0))s"

passed=0
failed=0
failures=()
for entry in "${list[@]}"; do
	pkg=${entry%% *} dir=${entry#* }
	bin="$work/$(echo "$pkg" | tr / _).test"
	skip=()
	if [ -n "${QEMU_SKIP[$pkg]:-}" ]; then
		skip=(-test.skip "${QEMU_SKIP[$pkg]}")
		echo "    $pkg: skipping ${QEMU_SKIP[$pkg]} under $qemu (reason in scripts/test-arm.sh)"
	fi
	start=$(date +%s)
	if (cd "$dir" && "$qemu" "$bin" -test.count=1 -test.timeout="$timeout" "${skip[@]}") >"$work/out" 2>&1; then
		printf 'ok  \t%s\t%ds (%s)\n' "$pkg" "$(($(date +%s) - start))" "$qemu"
		passed=$((passed + 1))
	else
		cat "$work/out"
		printf 'FAIL\t%s\t%ds (%s)\n' "$pkg" "$(($(date +%s) - start))" "$qemu"
		failed=$((failed + 1))
		failures+=("$pkg")
	fi
done

e2e=skipped
if [ "${E2E:-1}" != 0 ]; then
	dist=dist/linux-$arch
	echo "== test-arm $arch: end to end: $dist/termagent under $qemu against termserver and termsim"
	./scripts/cross.sh "$arch" "$dist" ./cmd/termagent
	if AGENT_EXEC="$qemu" AGENT_BIN="$dist/termagent" ./scripts/e2e.sh; then
		e2e=passed
		passed=$((passed + 1))
	else
		e2e=failed
		failed=$((failed + 1))
		failures+=("end-to-end")
	fi
fi

echo "== test-arm $arch: $(($(date +%s) - t0))s in all; end-to-end $e2e"
[ $failed -eq 0 ] || echo "failed: ${failures[*]}"
echo "$arch: $passed passed, $failed failed"
[ $failed -eq 0 ]
