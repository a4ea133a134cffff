#!/usr/bin/env bash
# termagent's footprint (`make footprint`): for each target, on loopback
# against termserver, with no hardware drivers configured:
#
#   startup   ms from exec to the first TCP connection to the server
#             (seen in /proc/net/tcp, polled every few ms)
#   idle      VmRSS once connected and idle, and CPU (utime+stime from
#             /proc/PID/stat) over IDLE seconds, as % of one core
#   drain     the agent restarted on an outbox of RECORDS records: time until
#             the server has stored them all, records/s, VmHWM (peak RSS)
#   burst     BURST download_person messages of about 15.3 MiB each (five
#             2.4 MB biometrics, base64; the limit is 16 MiB) pushed one after
#             the other: VmHWM during the burst (reset through clear_refs
#             first) and VmRSS 5 s after it
#   concurrent the same messages (BURST new persons) pushed all at once, one
#             push per person: VmHWM (reset first), how many were stored
#             (the agent runs 2 at a time, queues 2, answers the rest
#             "busy"), and VmRSS 5 s after
#
#   scripts/footprint.sh                      targets amd64 and arm64
#   TARGETS="arm64 armv7" RECORDS=20000 scripts/footprint.sh
#
# amd64 runs natively; arm64 and armv7 run the static cross-built binary
# under qemu-user, whose own memory (translator, code cache) is included in
# the RSS figures: the "qemu-base" line is a minimal static Go program
# (sleeps) under the same qemu, to subtract. Needs root only for
# clear_refs (else the burst peak includes the drain's).
#
# Environment: TARGETS (default "amd64 arm64"), RECORDS (100000), BURST (8),
# AGENT_ENV (NAME=VALUE... for the agent only, e.g. GOMEMLIMIT=40MiB),
# IDLE (10 s), ARM_CC/ARM64_CC/VERSION (see cross.sh), KEEP=1 keeps the work
# directory, LIMIT (seconds per wait, default 900).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=${TARGETS:-amd64 arm64}
records=${RECORDS:-100000}
burst=${BURST:-8}
idle=${IDLE:-10}
limit=${LIMIT:-900}
go=${GO:-go}
hz=$(getconf CLK_TCK)

work=$(mktemp -d "${TMPDIR:-/tmp}/termagent-footprint.XXXXXX")
pids=()
. scripts/lib.sh
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p" 10; done
	if [ "${KEEP:-0}" = 1 ]; then echo "footprint: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
	echo "footprint: FAIL: $*" >&2
	for f in "$work"/*/agent*.log "$work"/*/server.log; do
		[ -f "$f" ] || continue
		echo "---- last lines of $f" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}
# proc_kb PID FIELD: a VmXXX field of /proc/PID/status, in kB.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# cpu_ticks PID: utime+stime of PID in clock ticks.
cpu_ticks() {
	local stat rest
	stat=$(<"/proc/$1/stat")
	rest=${stat##*) }
	read -r -a f <<<"$rest"
	echo $((f[11] + f[12]))
}
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

echo "footprint: building termserver, fillqueue and the agents ($targets)"
"$go" build -o "$work/" ./cmd/termserver ./scripts/fillqueue

# Biometrics for the burst: 5 files of 2.4 MB, referenced by every person.
mkdir -p "$work/burst"
for b in face left_code right_code left_image right_image; do
	head -c 2400000 /dev/urandom >"$work/burst/$b.bin"
done
{
	echo "person_id,person_name,face,left_code,right_code,left_image,right_image"
	for i in $(seq 1 "$burst"); do
		echo "burst-$i,Burst $i,face.bin,left_code.bin,right_code.bin,left_image.bin,right_image.bin"
	done
} >"$work/burst/persons.csv"
for i in $(seq 1 "$burst"); do
	{
		echo "person_id,person_name,face,left_code,right_code,left_image,right_image"
		echo "conc-$i,Concurrent $i,face.bin,left_code.bin,right_code.bin,left_image.bin,right_image.bin"
	} >"$work/burst/conc-$i.csv"
done

# One line per target, printed at the end.
results=()

measure() {
	local target=$1 exec=() dir="$work/$1" bin
	read -r -a agent_env <<<"${AGENT_ENV:-}"
	case "$target" in
	amd64) exec=(env "${agent_env[@]}") ;;
	arm64) exec=(env "${agent_env[@]}" qemu-aarch64) ;;
	armv7) exec=(env "${agent_env[@]}" qemu-arm) ;;
	*) fail "unknown target $target (want amd64, arm64 or armv7)" ;;
	esac
	mkdir -p "$dir"
	./scripts/cross.sh "$target" "$dir" ./cmd/termagent
	bin=$dir/termagent
	version=$("${exec[@]}" "$bin" version)

	if [ "$target" != amd64 ]; then
		# qemu's own share: a static Go program that only sleeps.
		mkdir -p "$work/base"
		printf 'package main\n\nimport "time"\n\nfunc main() { time.Sleep(time.Hour) }\n' >"$work/base/main.go"
		(cd "$work/base" && [ -f go.mod ] || "$go" mod init base >/dev/null 2>&1)
		(cd "$work/base" && CGO_ENABLED=0 GOOS=linux GOARCH=${target/armv7/arm} GOARM=7 "$go" build -o "base-$target" .)
		"${exec[@]}" "$work/base/base-$target" &
		local bpid=$!
		pids+=("$bpid")
		sleep 2
		results+=("$(printf '%-10s idle RSS %s MiB (a sleeping static Go program under %s)' "qemu-base" "$(mib "$(proc_kb "$bpid" VmRSS)")" "${exec[-1]}")")
		stop_pid "$bpid" 5
	fi

	start_termserver "$work/termserver" "$dir"
	local listen=$server_listen admin=$server_admin port
	port=$(printf '%04X' "${listen##*:}")
	server() { "$work/termserver" -admin "$admin" "$@"; }
	stored() { server stats | sed -n 's/.*stored \([0-9]*\).*/\1/p'; }

	cat >"$dir/termagent.yaml" <<EOF
server:
  address: "$listen"
  backoff_min: 100ms
  backoff_max: 1s
store:
  path: $dir/agent/termagent.db
  outbox_capacity: $((records > 100000 ? records : 100000))
control:
  socket: $dir/agent/termagent.sock
log:
  level: info
  format: json
EOF
	mkdir -m 0700 -p "$dir/agent"

	# connected_to_server: the agent has a socket to the server's port.
	connected_to_server() {
		local sl local_addr rem st rest
		while read -r sl local_addr rem st rest; do
			if [ "${rem##*:}" = "$port" ] && { [ "$st" = 01 ] || [ "$st" = 02 ]; }; then
				return 0
			fi
		done </proc/net/tcp
		return 1
	}

	# 1. Start-up and idle.
	local t0 t1 apid
	t0=$(now_us)
	"${exec[@]}" "$bin" run -config "$dir/termagent.yaml" 2>"$dir/agent-idle.log" &
	apid=$!
	pids+=("$apid")
	until connected_to_server; do
		kill -0 "$apid" 2>/dev/null || fail "$target: termagent exited during start-up"
		[ $(($(now_us) - t0)) -lt $((limit * 1000000)) ] || fail "$target: no connection within ${limit}s"
		sleep 0.002
	done
	t1=$(now_us)
	local startup_ms=$(((t1 - t0) / 1000))
	wait_for "$target: the terminal to identify itself" sh -c "'$work/termserver' -admin '$admin' list | grep -q '1 terminal(s) connected'"
	sleep 2 # let the start-up work (device info, events) settle
	local c0 c1 idle_rss idle_cpu
	c0=$(cpu_ticks "$apid")
	sleep "$idle"
	c1=$(cpu_ticks "$apid")
	idle_rss=$(proc_kb "$apid" VmRSS)
	idle_cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
	stop_pid "$apid" 30

	# 2. Drain of RECORDS records.
	"$work/fillqueue" -db "$dir/agent/termagent.db" -n "$records" >/dev/null
	local before
	before=$(stored)
	t0=$(now_us)
	"${exec[@]}" "$bin" run -config "$dir/termagent.yaml" 2>"$dir/agent-drain.log" &
	apid=$!
	pids+=("$apid")
	local peak_rss=0 r s
	while :; do
		kill -0 "$apid" 2>/dev/null || fail "$target: termagent exited during the drain"
		r=$(proc_kb "$apid" VmRSS)
		[ "${r:-0}" -gt "$peak_rss" ] && peak_rss=$r
		s=$(stored)
		[ "${s:-0}" -ge $((before + records)) ] && break
		[ $(($(now_us) - t0)) -lt $((limit * 1000000)) ] || fail "$target: drain not done within ${limit}s ($((s - before)) of $records)"
		sleep 0.5
	done
	t1=$(now_us)
	local drain_s drain_rate drain_hwm
	drain_s=$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.1f", us / 1e6 }')
	drain_rate=$(awk -v n="$records" -v us=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (us / 1e6) }')
	drain_hwm=$(proc_kb "$apid" VmHWM)

	# 3. Burst of ~15 MiB download_person messages.
	wait_for "$target: the terminal to identify itself" sh -c "'$work/termserver' -admin '$admin' list | grep -q '1 terminal(s) connected'"
	local reset=" (HWM not reset: not root)"
	if echo 5 >"/proc/$apid/clear_refs" 2>/dev/null; then reset=""; fi
	server push -to all "$work/burst/persons.csv" >"$dir/push.out" 2>&1 || {
		cat "$dir/push.out" >&2
		fail "$target: burst push failed"
	}
	local burst_hwm after_rss
	burst_hwm=$(proc_kb "$apid" VmHWM)
	sleep 5
	after_rss=$(proc_kb "$apid" VmRSS)

	# 4. The same messages, all at once: one push per person, concurrently.
	echo 5 >"/proc/$apid/clear_refs" 2>/dev/null || true
	local cpids=() cstored=0 i p conc_hwm conc_rss
	for i in $(seq 1 "$burst"); do
		server push -to all "$work/burst/conc-$i.csv" >"$dir/push-conc-$i.out" 2>&1 &
		cpids+=($!)
	done
	for p in "${cpids[@]}"; do
		if wait "$p"; then cstored=$((cstored + 1)); fi
	done
	conc_hwm=$(proc_kb "$apid" VmHWM)
	sleep 5
	conc_rss=$(proc_kb "$apid" VmRSS)
	stop_pid "$apid" 30

	results+=("$(printf '%-10s start-up %5d ms | idle RSS %6s MiB, CPU %5s %% over %ss | drain %d records %6ss (%s/s) peak %6s MiB | burst %dx15.3MiB peak %6s MiB%s, RSS 5s later %6s MiB | %d concurrent peak %6s MiB (%d stored, rest busy), RSS 5s later %6s MiB' \
		"$target" "$startup_ms" "$(mib "$idle_rss")" "$idle_cpu" "$idle" "$records" "$drain_s" "$drain_rate" "$(mib "$drain_hwm")" \
		"$burst" "$(mib "$burst_hwm")" "$reset" "$(mib "$after_rss")" "$burst" "$(mib "$conc_hwm")" "$cstored" "$(mib "$conc_rss")")")
	echo "${results[-1]}"
}

for t in $targets; do
	echo "== footprint $t"
	measure "$t"
done
echo "== footprint: $version, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)${AGENT_ENV:+, agent env $AGENT_ENV}"
printf '%s\n' "${results[@]}"
