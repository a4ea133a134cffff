#!/usr/bin/env bash
# The demo (make demo): builds termserver, termsim and termagent, then runs
# `termserver demo`, which starts the three on loopback in a temp dir and
# plays the scenario: enrol three persons (card, face photo, fingerprint
# template, one a PIN), present each credential, a stranger, a network cut
# and its recovery, a remote open, a lost acknowledgement, then the keypad
# and the door watch: three wrong PINs (lockout event), the exit button, a
# forced door and a door held open (each an event at the server). It prints the story and a summary table and exits
# 0 only if the summary adds up, so CI runs it as a test.
#
# No hardware, no root, no network beyond loopback. Extra arguments go to
# `termserver demo` (e.g. -keep to keep the logs and databases).
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
GO=${GO:-go}

bin=$(mktemp -d "${TMPDIR:-/tmp}/termdemo-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT

missing=()
for prog in termserver termsim termagent; do
	if [ ! -f "cmd/$prog/main.go" ]; then
		missing+=("cmd/$prog (no main.go)")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "demo: cannot run: missing ${missing[*]}" >&2
	exit 1
fi

echo "demo: building termserver, termsim and termagent..."
if ! "$GO" build -o "$bin/" ./cmd/termserver ./cmd/termsim ./cmd/termagent; then
	echo "demo: cannot run: a program does not build (see above)" >&2
	exit 1
fi

"$bin/termserver" demo -bin "$bin" "$@"
