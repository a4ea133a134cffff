#!/usr/bin/env bash
# One end-to-end run on loopback: termserver and termsim (built for this
# machine) and a termagent binary, possibly for another architecture under
# qemu-user. Used by scripts/test-arm.sh; runs natively too.
#
#   AGENT_EXEC=qemu-aarch64 AGENT_BIN=dist/linux-arm64/termagent scripts/e2e.sh
#
# It checks, in order: the agent connects and reports the software_version
# stamped in its binary; a person pushed by the server is stored; a swipe of
# that person's card on the simulated reader unlocks the simulated relay and
# yields a card record at the server; the agent's outbox is then empty (the
# record was acknowledged); SIGTERM stops the agent with status 0.
#
# Environment: AGENT_BIN (default bin/termagent), AGENT_EXEC (a wrapper such
# as qemu-arm; default none), SERVER_BIN / SIM_BIN (default: built from
# ./cmd/termserver and ./cmd/termsim), E2E_TIMEOUT (seconds per wait,
# default 60), KEEP=1 keeps the work directory. Prints "e2e: ok" on success.
set -euo pipefail
cd "$(dirname "$0")/.."

agent_bin=${AGENT_BIN:-bin/termagent}
read -r -a agent_exec <<<"${AGENT_EXEC:-}"
limit=${E2E_TIMEOUT:-60}
go=${GO:-go}
card=0006547886

[ -x "$agent_bin" ] || { echo "e2e: $agent_bin missing or not executable" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/termagent-e2e.XXXXXX")
pids=()
. scripts/lib.sh
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p" 10; done
	if [ "${KEEP:-0}" = 1 ]; then echo "e2e: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
	echo "e2e: FAIL: $*" >&2
	local f
	for f in server.log sim.log agent.log; do
		[ -f "$work/$f" ] || continue
		echo "---- last lines of $f" >&2
		tail -n 25 "$work/$f" >&2
	done
	exit 1
}

server_bin=${SERVER_BIN:-}
sim_bin=${SIM_BIN:-}
if [ -z "$server_bin" ] || [ -z "$sim_bin" ]; then
	"$go" build -o "$work/" ./cmd/termserver ./cmd/termsim
	server_bin=${server_bin:-$work/termserver}
	sim_bin=${sim_bin:-$work/termsim}
fi
expect_version=$("${agent_exec[@]}" "$agent_bin" version | awk '{print $2}')
echo "e2e: agent ${agent_exec[*]} $agent_bin (version $expect_version)"

# The server, on free loopback ports it reports in its log.
start_termserver "$server_bin" "$work"
listen=$server_listen admin=$server_admin
server() { "$server_bin" -admin "$admin" "$@"; }

# The simulated card reader and relay board, driven through a FIFO on its console.
mkfifo "$work/sim.in"
"$sim_bin" -dir "$work/sim" -devices card,relay -v <"$work/sim.in" >"$work/sim.log" 2>&1 &
pids+=($!)
exec 3>"$work/sim.in"
wait_for "termsim's card reader" test -e "$work/sim/card"
wait_for "termsim's relay" test -e "$work/sim/relay"

mkdir -m 0700 "$work/agent"
cat >"$work/agent/termagent.yaml" <<EOF
server:
  address: "$listen"
  backoff_min: 200ms
  backoff_max: 1s
store:
  path: $work/agent/termagent.db
device:
  address: "e2e gate"
hal:
  card:
    driver: rdm6300
    port: $work/sim/card
  door:
    driver: lcus
    port: $work/sim/relay
    pulse: 1s
upload:
  retry_min: 200ms
  retry_max: 1s
control:
  socket: $work/agent/termagent.sock
log:
  level: debug
  format: console
EOF
"${agent_exec[@]}" "$agent_bin" check-config -config "$work/agent/termagent.yaml" >/dev/null ||
	fail "termagent check-config rejected the e2e configuration"
"${agent_exec[@]}" "$agent_bin" run -config "$work/agent/termagent.yaml" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)

connected() { server list | grep -q "$expect_version"; }
wait_for "the agent to connect and report software_version $expect_version" connected
echo "e2e: agent connected, software_version $expect_version"

printf 'person_id,person_name,card_number\ne2e-1,E2E Person,%s\n' "$card" >"$work/persons.csv"
server push -to all "$work/persons.csv" >"$work/push.out" 2>&1 || { cat "$work/push.out" >&2; fail "push of one person"; }

echo "swipe $card" >&3
echo "await relay on ${limit}s" >&3
record() { server records -limit 0 | grep "e2e-1" | grep "$card" | grep -q card; }
wait_for "the card record at the server" record
echo "e2e: card record stored by the server"
wait_for "termsim to see the relay unlocked" grep -q 'relay on' "$work/sim.log"

status() { "${agent_exec[@]}" "$agent_bin" status -json -config "$work/agent/termagent.yaml"; }
acked() { status | tr -d ' \n' | grep -q '"outbox_depth":0,'; }
wait_for "the agent's outbox to be empty (record acknowledged)" acked
status | tr -d ' \n' | grep -q '"uploaded":[1-9]' || fail "agent status shows no upload"
echo "e2e: record acknowledged (outbox empty)"

kill -TERM "$agent_pid"
deadline=$((SECONDS + limit))
while kill -0 "$agent_pid" 2>/dev/null; do
	if [ $SECONDS -ge $deadline ]; then
		kill -QUIT "$agent_pid" # its goroutine dump goes to agent.log
		sleep 1
		fail "termagent did not stop within ${limit}s of SIGTERM"
	fi
	sleep 0.1
done
rc=0
wait "$agent_pid" || rc=$?
[ $rc -eq 0 ] || fail "termagent exited with status $rc on SIGTERM"
echo "e2e: ok"
