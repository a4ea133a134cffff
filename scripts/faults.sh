#!/usr/bin/env bash
# make faults: the full fault and hostile-server suites, then their table.
#
# Fault tests are named TestFault* (device, disk, power) and TestHostile*
# (the server and its messages). `make test` runs them in their short form;
# here TERMAGENT_FAULTS=full asks for the full one (more kills, bigger
# bursts). Each test logs one FAULTROW line per fault (scripts/faulttable).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
export TERMAGENT_FAULTS=full
set +e
go test -json -count=1 -timeout 30m -run '^(TestFault|TestHostile)' ${FAULTPKGS:-./...} >"$out" 2>&1
rc=$?
set -e
go run ./scripts/faulttable <"$out" || exit 1
exit $rc
