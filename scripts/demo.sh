#!/usr/bin/env bash
# The demo: termserver, termsim and termagent on loopback with a scenario.
# Not built yet: it needs cmd/termserver, cmd/termsim and cmd/termagent.
set -euo pipefail
echo "demo: not available yet: cmd/termserver, cmd/termsim and cmd/termagent are still being built (issues 4, 5, 6)." >&2
exit 1
