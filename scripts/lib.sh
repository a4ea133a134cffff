# Shell helpers shared by scripts/e2e.sh and scripts/footprint.sh (bash;
# sourced, not run). The caller defines fail MESSAGE (prints and exits) and
# sets limit (seconds a wait may take) and pids (an array) before use.

# stop_pid PID SECONDS: SIGTERM, then SIGKILL if PID is still there after
# SECONDS; reaps it.
stop_pid() {
	local pid=$1 deadline=$((SECONDS + $2))
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# wait_for WHAT COMMAND...: runs COMMAND until it succeeds; fails after
# $limit seconds naming WHAT.
wait_for() {
	local what=$1 deadline=$((SECONDS + limit))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s waiting for $what"
		sleep 0.2
	done
}

# start_termserver BIN DIR: starts `BIN serve` on free loopback ports with
# its database and log (server.log) in DIR, adds it to pids, and sets
# server_listen (host:port for terminals) and server_admin (admin endpoint)
# from what it logs.
start_termserver() {
	local bin=$1 dir=$2
	"$bin" -admin 127.0.0.1:0 serve -listen 127.0.0.1:0 -db "$dir/server.db" 2>"$dir/server.log" &
	pids+=($!)
	wait_for "termserver to listen" grep -q '"serving terminals"' "$dir/server.log"
	wait_for "termserver's admin endpoint" grep -q '"termserver started"' "$dir/server.log"
	server_listen=$(sed -n 's/.*"listen":\["tcp:\/\/\([^"]*\)".*/\1/p' "$dir/server.log" | head -n 1)
	server_admin=$(sed -n 's/.*"admin":"\([^"]*\)".*/\1/p' "$dir/server.log" | head -n 1)
	[ -n "$server_listen" ] && [ -n "$server_admin" ] || fail "no listen/admin address in $dir/server.log"
}
