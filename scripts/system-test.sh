#!/usr/bin/env bash
# The system test (`make system-test`): the device images (`make image`) boot
# under QEMU full-system emulation of the virt board, against termserver and
# termsim on this machine's loopback:
#
#   scripts/system-test.sh DIST ARCH...          e.g. dist arm64 armv7
#
# DIST/image-linux-ARCH/ holds the image, DIST/host/ termserver and termsim.
# Per architecture (the architectures run side by side, one QEMU each):
#   - the guest's network is restricted (restrict=on) to one forward,
#     10.0.2.100:49003, a fresh socat to termserver for each connection;
#   - termsim's card reader is a PCI 16550 UART (/dev/ttyS0) and its LCUS
#     relay board sits behind an emulated USB FTDI adapter (/dev/ttyUSB0);
#   - the store is an ext4 virtio disk (/dev/vda) kept across boots.
# Scenarios, one row each, then "N passed, N failed, N skipped":
#   1 push a person, swipe, relay clicks, record acknowledged (as user termagent)
#   2 termagent killed with SIGKILL: the init script's supervisor restarts it,
#     nothing lost
#   3 the GPIO door on a gpio-sim chip (skipped, with the reason, when the
#     image has no gpio-sim module)
#   4 power cuts: QEMU killed with SIGKILL during swipes and drains (CUTS
#     times, default 20: half at random moments, half the instant termsim
#     hears a relay click), booted again each time; every record whose relay
#     click termsim saw reaches the server exactly once
#   5 the input drivers' kernel-interface tests inside the guest, as root:
#     hal/evdev's TestCardReaderOnUinput on a uinput keyboard and hal/wiegand's
#     TestReaderOnGPIOSim on a gpio-sim chip; the test binaries (DIST/
#     kerneltests-linux-ARCH/, scripts/cross.sh -t) come on a second virtio
#     disk (/dev/vdb). Each named test must report --- PASS: a skip fails the
#     row. (Skipped, with the reason, when the image has no gpio-sim module.)
#
# Environment: CUTS (power cuts per architecture, default 20), ONLY (the
# scenarios to run, e.g. "1 4"; default all), ST_TIMEOUT
# (seconds per wait, default 90), ST_DEADLINE (seconds for the whole run,
# default 900), KEEP=1 keeps the work directory. Every wait is bounded;
# nothing but loopback is used on this side.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
dist=$1
shift
archs=("$@")
for tool in socat qemu-system-aarch64 qemu-system-arm mkfs.ext4; do
	command -v "$tool" >/dev/null || { echo "system-test: $tool not found (Debian: apt-get install qemu-system-arm socat e2fsprogs)" >&2; exit 1; }
done
server_bin=$dist/host/termserver
sim_bin=$dist/host/termsim
[ -x "$server_bin" ] && [ -x "$sim_bin" ] || { echo "system-test: $dist/host/termserver, termsim missing" >&2; exit 1; }
top=$(mktemp -d "${TMPDIR:-/tmp}/termagent-system.XXXXXX")
t_start=$SECONDS

# run_arch ARCH: every scenario on one architecture; rows go to $top/ARCH/rows.
run_arch() {
	arch=$1
	w=$top/$arch
	img=$dist/image-linux-$arch
	mkdir -p "$w"
	limit=${ST_TIMEOUT:-90}
	cuts=${CUTS:-20}
	pids=()
	extra_disk=
	qpid=
	. scripts/lib.sh
	trap 'cleanup_arch' EXIT
	trap 'exit 143' TERM INT
	log() { echo "[$arch $(date +%T)] $*" >>"$w/progress"; }

	read -r -a qemu_base <"$img/qemu.args"
	features=$(cat "$img/features")

	# ---- termserver on loopback, its admin token in the work directory.
	"$server_bin" -admin 127.0.0.1:0 -token-file "$w/admin.token" serve -listen 127.0.0.1:0 \
		-db "$w/server.db" -log-format json 2>"$w/server.log" &
	pids+=($!)
	wait_for "termserver to listen" grep -q '"termserver started"' "$w/server.log"
	listen=$(sed -n 's/.*"listen":\["tcp:\/\/\([^"]*\)".*/\1/p' "$w/server.log" | head -n 1)
	admin=$(sed -n 's/.*"admin":"\([^"]*\)".*/\1/p' "$w/server.log" | head -n 1)
	[ -n "$listen" ] && [ -n "$admin" ] || fail "no listen/admin address in server.log"
	port=${listen##*:}

	# ---- termsim: card reader and relay board, console kept open on a FIFO.
	mkfifo "$w/sim.in"
	"$sim_bin" -dir "$w/sim" -devices card,relay -v <"$w/sim.in" >"$w/sim.log" 2>&1 &
	pids+=($!)
	exec 3>"$w/sim.in"
	wait_for "termsim's devices" test -e "$w/sim/relay"

	rows=$w/rows
	: >"$rows"
	scenario 1 "push, swipe, relay, record acknowledged" s_push
	scenario 2 "termagent SIGKILLed: supervisor restarts it" s_kill
	if [[ " $features " == *" gpio-sim "* ]]; then
		scenario 3 "GPIO door on gpio-sim (relay, sensor, exit button)" s_gpio
	else
		printf '%s\t3\t%s\tSKIP\t%s\n' "$arch" "GPIO door on gpio-sim" "the image has no gpio-sim module: $(cat "$img/gpio-sim.why" 2>/dev/null || echo 'not built')" >>"$rows"
	fi
	scenario 4 "power cuts (QEMU SIGKILLed) during swipes and drains" s_power
	if [[ " $features " == *" gpio-sim "* ]]; then
		scenario 5 "evdev on uinput, Wiegand on gpio-sim (Go tests in guest)" s_kernel
	elif [[ " ${ONLY:-5} " == *" 5 "* ]]; then
		printf '%s\t5\t%s\tSKIP\t%s\n' "$arch" "evdev on uinput, Wiegand on gpio-sim" "the image has no gpio-sim module: $(cat "$img/gpio-sim.why" 2>/dev/null || echo 'not built')" >>"$rows"
	fi
}

cleanup_arch() {
	local p
	[ -n "${con_pid:-}" ] && kill -KILL "$con_pid" 2>/dev/null
	[ -f "$w/qpid" ] && kill -KILL "$(cat "$w/qpid")" 2>/dev/null
	for p in "${pids[@]}"; do stop_pid "$p" 10; done
}

# fail MESSAGE: the current scenario fails (it runs in a subshell).
fail() {
	echo "$*" >"$w/why"
	log "FAIL: $*"
	exit 1
}

# scenario N TITLE FUNCTION: runs FUNCTION in a subshell and appends its row.
scenario() {
	local n=$1 title=$2 fn=$3 t0=$SECONDS rc=0
	[[ " ${ONLY:-1 2 3 4 5} " == *" $n "* ]] || return 0
	rm -f "$w/why" "$w/figures"
	log "scenario $n: $title"
	("$fn") >>"$w/scenario$n.out" 2>&1 || rc=$?
	# The scenario's QEMU (if still running) goes with it.
	if [ -f "$w/qpid" ]; then
		kill -KILL "$(cat "$w/qpid")" 2>/dev/null || true
		rm -f "$w/qpid"
	fi
	local figures
	figures="$(cat "$w/figures" 2>/dev/null || true)"
	if [ $rc -eq 0 ]; then
		printf '%s\t%s\t%s\tPASS\t%s (%ds)\n' "$arch" "$n" "$title" "$figures" $((SECONDS - t0)) >>"$rows"
	else
		printf '%s\t%s\t%s\tFAIL\t%s (%ds)\n' "$arch" "$n" "$title" "$(cat "$w/why" 2>/dev/null || echo "exit $rc")" $((SECONDS - t0)) >>"$rows"
		{
			echo "---- $arch scenario $n: $(cat "$w/why" 2>/dev/null)"
			for f in console.log sim.log server.log; do
				[ -f "$w/$f" ] || continue
				echo "---- $arch: last lines of $f"
				tail -n 30 "$w/$f"
			done
		} >>"$top/failures"
	fi
	# The next scenario's guest starts from a clean console log.
	[ -f "$w/console.log" ] && mv "$w/console.log" "$w/console.$n.log"
	return 0
}

figures() { echo "$*" >"$w/figures"; }
server() { "$server_bin" -admin "$admin" -token-file "$w/admin.token" "$@"; }
sim() { "$sim_bin" send -dir "$w/sim" -timeout 60s "$@"; }
clicks() { grep -c 'relay: click, ON' "$w/sim.log" || true; }
relay_on() { grep 'relay: click' "$w/sim.log" | tail -n 1 | grep -q ON; }
accepted() { server stats | sed -n 's/.*accepted \([0-9]*\)).*/\1/p'; }
stored() { server stats | sed -n 's/.*stored \([0-9]*\).*/\1/p'; }
dups() { server stats | sed -n 's/.*duplicates \([0-9]*\).*/\1/p'; }

# new_disk: an empty ext4 image for the store.
new_disk() {
	rm -f "$w/disk.img"
	mkfs.ext4 -q -F -L termagent "$w/disk.img" 64M
}

# boot DOOR: starts QEMU with the image (door lcus or gpio), the devices and
# the disk; sets qpid. The console is a socket (guest commands) logged to
# console.log.
boot() {
	local door=$1 cmdline
	cmdline="console=ttyAMA0 quiet ta.door=$door ta.disk=1"
	local dev=(-chardev "serial,id=card,path=$(readlink -f "$w/sim/card")" -device pci-serial,chardev=card)
	if [ "$door" = lcus ]; then
		cmdline="$cmdline ta.usb=1"
		dev+=(-device qemu-xhci -chardev "serial,id=relay,path=$(readlink -f "$w/sim/relay")" -device usb-serial,chardev=relay)
	fi
	rm -f "$w/con.sock"
	"${qemu_base[@]}" -m 256 -smp 1 -no-reboot -display none -monitor none \
		-kernel "$img/vmlinuz" -initrd "$img/initramfs.cpio.gz" -append "$cmdline" \
		-chardev "socket,id=con,path=$w/con.sock,server=on,wait=off,logfile=$w/console.log,logappend=on" \
		-serial chardev:con \
		-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:49003-cmd:socat - TCP:127.0.0.1:$port" \
		-device virtio-net-pci,netdev=n0,romfile= \
		-drive "file=$w/disk.img,if=none,format=raw,id=d0" -device virtio-blk-pci,drive=d0 \
		"${dev[@]}" ${extra_disk:+-drive "file=$extra_disk,if=none,format=raw,id=d1,readonly=on" -device virtio-blk-pci,drive=d1} >>"$w/qemu.log" 2>&1 &
	qpid=$!
	echo "$qpid" >"$w/qpid"
	boots=$((${boots:-0} + 1))
	console_attach
}

# cut: SIGKILL QEMU (a power cut), reaped.
cut() {
	kill -KILL "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=
}

# wait_connected N: until the server has accepted N connections in all.
wait_connected() {
	local n=$1
	at_least() { [ "$(accepted)" -ge "$n" ]; }
	qemu_alive() { kill -0 "$qpid" 2>/dev/null; }
	local deadline=$((SECONDS + limit))
	until at_least; do
		qemu_alive || fail "QEMU exited during boot: $(tail -n 3 "$w/qemu.log" | tr '\n' ' ')"
		[ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s waiting for termagent to connect (boot $boots)"
		sleep 0.2
	done
}

# console_attach: one connection to the guest's console for this boot, fed
# from a FIFO on fd 4 (QEMU drops what a client sends just before it leaves).
# Called by boot, in the scenario's shell (not in a $(...) subshell).
console_attach() {
	[ -p "$w/con.in" ] || mkfifo "$w/con.in"
	exec 4<>"$w/con.in"
	wait_for "the guest console socket" test -S "$w/con.sock"
	# It reads (and drops: console.log has it) what the guest writes, or the
	# guest would block on a full socket.
	socat - "UNIX-CONNECT:$w/con.sock" <"$w/con.in" >/dev/null 2>>"$w/qemu.log" &
	con_pid=$!
}

# guest COMMAND: runs COMMAND in the guest's console shell; prints its output,
# returns its status.
guest() {
	# The markers are quoted where typed: only the guest's output holds them whole
	# (the console echoes, and wraps, what is typed).
	local n="$RANDOM$RANDOM" off out deadline=$((SECONDS + limit))
	off=$(stat -c %s "$w/console.log" 2>/dev/null || echo 0)
	printf 'echo "@@"S%s; %s 2>&1; echo "@@"E%s $?\n' "$n" "$1" "$n" >&4
	until tail -c +$((off + 1)) "$w/console.log" | grep -aqE "^@@E$n [0-9]+"; do
		[ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s running in the guest: $1"
		sleep 0.2
	done
	out=$(tail -c +$((off + 1)) "$w/console.log" | tr -d '\r')
	printf '%s\n' "$out" | sed -n "/^@@S$n\$/,/^@@E$n [0-9]/p" | sed '1d;$d'
	return "$(printf '%s\n' "$out" | sed -n "s/^@@E$n \([0-9]*\).*/\1/p" | head -n 1)"
}

# push_cards FIRST COUNT: pushes COUNT persons with cards FIRST.. to the terminal.
push_cards() {
	local first=$1 count=$2 i
	{
		echo "person_id,person_name,card_number"
		for ((i = first; i < first + count; i++)); do printf 'p%d,Person %d,%010d\n' "$i" "$i" "$i"; done
	} >"$w/persons-$first.csv"
	server push -to all "$w/persons-$first.csv" >"$w/push.out" 2>&1 || fail "push of $count persons: $(tail -n 2 "$w/push.out" | tr '\n' ' ')"
}

# records_for CARD: how many records the server stored for CARD.
records_for() { server export | awk -F, -v c="$1" 'NR > 1 { for (i = 1; i <= NF; i++) if ($i == c) { n++; break } } END { print n + 0 }'; }

# ---- scenario 1
s_push() {
	new_disk
	boot lcus
	wait_connected 1
	local t_conn=$SECONDS
	push_cards 1000 1
	local c0
	c0=$(clicks)
	sim "swipe 0000001000; await relay on ${limit}s" >/dev/null || fail "no relay click after the swipe"
	has_record() { [ "$(records_for 0000001000)" -ge 1 ]; }
	wait_for "the record at the server" has_record
	acked() { guest "termagent status -json" | tr -d ' \n' | grep -q '"outbox_depth":0,'; }
	wait_for "termagent's outbox to be empty (record acknowledged)" acked
	[ "$(records_for 0000001000)" = 1 ] || fail "$(records_for 0000001000) records for one swipe"
	# termagent runs as its own user, started by the init script's supervisor.
	local user
	user=$(guest 'stat -c %U /proc/$(cat /run/termagent.pid.agent)' | grep -E '^[a-z_][a-z0-9_-]*$' | head -n 1)
	[ "$user" = termagent ] || fail "termagent runs as user '$user', want termagent"
	guest "ps -o args" | grep -q '/bin/sh /etc/init.d/termagent supervise' || fail "no init-script supervisor in ps"
	guest "ls -l /dev/ttyS0 /dev/ttyUSB0" | grep -c ' dialout ' | grep -qx 2 || fail "the serial ports are not group dialout (mdev rules)"
	figures "clicks $(($(clicks) - c0)), records 1, acknowledged; user termagent; ttyS0+ttyUSB0 dialout"
}

# ---- scenario 2
s_kill() {
	boot lcus
	local a0
	a0=$(accepted)
	wait_connected $((a0 + 1))
	push_cards 2000 2
	sim "swipe 0000002000; await relay on ${limit}s" >/dev/null || fail "no relay click for the first swipe"
	local pid1 pid2
	pid1=$(guest "cat /run/termagent.pid.agent" | grep -E "^[0-9]+$")
	guest "kill -KILL $pid1" >/dev/null || fail "kill -KILL $pid1 in the guest failed"
	wait_connected $((a0 + 2))
	pid2=$(guest "cat /run/termagent.pid.agent" | grep -E "^[0-9]+$")
	[ "$pid1" != "$pid2" ] || fail "termagent pid unchanged after SIGKILL ($pid1)"
	sim "swipe 0000002001; await relay on ${limit}s" >/dev/null || fail "no relay click after the restart"
	both() { [ "$(records_for 0000002000)$(records_for 0000002001)" = 11 ]; }
	wait_for "both records at the server" both
	acked() { guest "termagent status -json" | tr -d ' \n' | grep -q '"outbox_depth":0,'; }
	wait_for "termagent's outbox to be empty" acked
	local r1 r2
	r1=$(records_for 0000002000) r2=$(records_for 0000002001)
	[ "$r1$r2" = 11 ] || fail "records for the two swipes: $r1 and $r2, want 1 and 1"
	figures "pid $pid1 killed, restarted as $pid2, reconnected; records 2 of 2, each once"
}

# ---- scenario 3 (gpio-sim)
# gwait LINE VALUE: in the guest, until gpio-sim line LINE (0 relay, 1 sensor,
# 2 exit button) reads VALUE, at most 15 s.
gwait() {
	guest "f=\$(echo /sys/devices/platform/gpio-sim.*/gpiochip*/sim_gpio$1/value); i=0; while [ \"\$(cat \$f)\" != $2 ] && [ \$i -lt 150 ]; do sleep 0.1; i=\$((i + 1)); done; [ \"\$(cat \$f)\" = $2 ]" >/dev/null
}
# gpull LINE up|down: the simulated switch on LINE (pull-down = closed to ground).
gpull() { guest "f=\$(echo /sys/devices/platform/gpio-sim.*/gpiochip*/sim_gpio$1/pull); echo pull-$2 >\$f" >/dev/null; }

s_gpio() {
	new_disk
	boot gpio
	local a0
	a0=$(accepted)
	wait_connected $((a0 + 1))
	push_cards 3000 1
	guest "cat /sys/kernel/config/gpio-sim/door/bank0/chip_name" | grep -q gpiochip || fail "no gpio-sim chip in the guest"
	gwait 0 0 || fail "relay line not released at start"
	sim "swipe 0000003000" >/dev/null || fail "swipe"
	gwait 0 1 || fail "the relay line did not go high after the swipe"
	has_record() { [ "$(records_for 0000003000)" -ge 1 ]; }
	wait_for "the record at the server" has_record
	gwait 0 0 || fail "the relay line did not fall after the pulse"
	# The exit button (to ground) opens the door without a record.
	gpull 2 down
	gwait 0 1 || fail "the exit button did not unlock the door"
	gpull 2 up
	gwait 0 0 || fail "the relay line did not fall after the exit button's pulse"
	# The door-position switch: open, then closed again.
	status_has() { guest "termagent status -json" | tr -d ' \n' | grep -q "$1"; }
	status_has '"door_open":false' || fail "door reported open at rest"
	gpull 1 down
	wait_for "termagent to see the door open" status_has '"door_open":true'
	gpull 1 up
	wait_for "termagent to see the door closed" status_has '"door_open":false'
	figures "relay line high on swipe and on exit button, low after the pulse; record 1; door sensor open/closed seen"
}

# ---- scenario 4
# swiper STATE: swipes a new card, waits for its click (or a bound), until
# STATE/stop exists; logs "card clicks-before" per swipe in STATE/swipes.
swiper() {
	local st=$1 card n0 deadline
	while [ ! -e "$st/stop" ] && [ "$next_card" -lt "$last_card" ]; do
		card=$(printf '%010d' "$next_card")
		next_card=$((next_card + 1))
		echo "$next_card" >"$st/next"
		n0=$(clicks)
		echo "$card $n0" >>"$st/swipes"
		sim "swipe $card" >/dev/null 2>&1 || true
		deadline=$((SECONDS + 15))
		while [ "$(clicks)" -le "$n0" ] && [ ! -e "$st/stop" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		[ -e "$st/stop" ] && break
		# The pulse ends (relay off) before the next card.
		deadline=$((SECONDS + 10))
		while relay_on && [ ! -e "$st/stop" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		sleep 0.$((RANDOM % 6))
	done
}

s_power() {
	new_disk
	local first=4000 ncards=250
	next_card=$first last_card=$((first + ncards))
	boot lcus
	local a0 cut_n=0 st
	a0=$(accepted)
	wait_connected $((a0 + 1))
	push_cards $first $ncards
	local clicked=$w/clicked
	: >"$clicked"
	: >"$w/unclicked"
	for ((cut_n = 1; cut_n <= cuts; cut_n++)); do
		st=$w/cut$cut_n
		mkdir -p "$st"
		# Every other cycle the server answers slowly: records queue up
		# and the next boot starts with a drain.
		if ((cut_n % 2 == 0)); then server faults -delay 700ms >/dev/null; else server faults -delay 0s >/dev/null; fi
		local c_start
		c_start=$(clicks)
		swiper "$st" &
		local sw=$!
		if ((cut_n % 2 == 1)); then
			# A random moment: 0 s to 4 s into this boot's swipes (and drain).
			sleep "$((RANDOM % 4)).$((RANDOM % 10))"
			echo random >"$st/when"
		else
			# The moment the relay clicks for the 1st to 3rd swipe: the
			# record must already be safe (at most 10 s, then at once).
			local want=$((c_start + 1 + RANDOM % 3)) deadline=$((SECONDS + 10))
			while [ "$(clicks)" -lt "$want" ] && [ $SECONDS -lt $deadline ]; do sleep 0.02; done
			echo at-click >"$st/when"
		fi
		cut
		touch "$st/stop"
		wait "$sw" 2>/dev/null || true
		next_card=$(cat "$st/next" 2>/dev/null || echo "$next_card")
		# Which swipes clicked: the click count grew before the next swipe.
		local final prev_card="" prev_n0 card n0
		final=$(clicks)
		while read -r card n0; do
			if [ -n "$prev_card" ]; then
				if [ "$n0" -gt "$prev_n0" ]; then echo "$prev_card" >>"$clicked"; else echo "$prev_card" >>"$w/unclicked"; fi
			fi
			prev_card=$card prev_n0=$n0
		done <"$st/swipes"
		if [ -n "$prev_card" ]; then
			if [ "$final" -gt "$prev_n0" ]; then echo "$prev_card" >>"$clicked"; else echo "$prev_card" >>"$w/unclicked"; fi
		fi
		log "cut $cut_n: $(wc -l <"$st/swipes") swipes, clicked so far $(wc -l <"$clicked")"
		boot lcus
		wait_connected $((a0 + cut_n + 1))
	done
	# The last boot drains everything: wait until the outbox is empty.
	server faults -delay 0s >/dev/null
	acked() { guest "termagent status -json" | tr -d ' \n' | grep -q '"outbox_depth":0,'; }
	wait_for "termagent's outbox to be empty after the last boot" acked
	local lost=0 twice=0 delivered card n lost_cards=""
	server export >"$w/records.csv"
	# Records of this scenario's cards (a swipe that did not click may have one too).
	delivered=$(grep -cE ",0000004[0-9]{3}," "$w/records.csv" || true)
	while read -r card; do
		n=$(awk -F, -v c="$card" 'NR > 1 { for (i = 1; i <= NF; i++) if ($i == c) { n++; break } } END { print n + 0 }' "$w/records.csv")
		if [ "$n" = 0 ]; then lost=$((lost + 1)); lost_cards="$lost_cards $card"; fi
		[ "$n" -gt 1 ] && twice=$((twice + 1))
	done <"$clicked"
	local salvaged
	# A database the power cut damaged is moved aside and a fresh one started
	# (termagent logs it): count those boots; the check above says whether
	# records were lost with it.
	salvaged=$(cat "$w"/console*.log | grep -ac 'damaged database moved aside' || true)
	local fig="cuts $cuts ($(cat "$w"/cut*/when | grep -c at-click) at a click), swipes $(cat "$w"/cut*/swipes | wc -l), clicks $(wc -l <"$clicked"), records delivered $delivered, resends dropped by session_id $(dups), duplicates $twice, lost $lost, databases salvaged $salvaged"
	figures "$fig"
	[ "$lost" = 0 ] || fail "$fig; lost cards:$lost_cards"
	[ "$twice" = 0 ] || fail "$fig"
	[ "$(wc -l <"$clicked")" -gt 0 ] || fail "$fig: no swipe clicked"
}

# ---- scenario 5 (the drivers' kernel-interface tests inside the guest)
# The tests and the packages whose test binaries hold them.
kernel_tests=("evdev TestCardReaderOnUinput" "wiegand TestReaderOnGPIOSim")

s_kernel() {
	local tdir=$dist/kerneltests-linux-$arch pkg name bin passed=0 got="" out
	rm -rf "$w/kt"
	mkdir -p "$w/kt"
	for t in "${kernel_tests[@]}"; do
		read -r pkg name <<<"$t"
		bin=$tdir/termagent_hal_$pkg.test
		[ -x "$bin" ] || fail "$bin missing (make system-test builds it with scripts/cross.sh -t $arch)"
		cp "$bin" "$w/kt/"
	done
	rm -f "$w/tests.img"
	mkfs.ext4 -q -F -L tests -d "$w/kt" "$w/tests.img" 64M || fail "mkfs.ext4 -d of the test disk"
	new_disk
	extra_disk=$w/tests.img
	boot lcus
	extra_disk=
	local a0
	a0=$(accepted)
	wait_connected $((a0 + 1))
	# /dev/vda is the store (rcS mounted it), /dev/vdb the tests.
	guest "mkdir -p /mnt/tests && mount -t ext4 -o ro /dev/vdb /mnt/tests && ls /mnt/tests" >"$w/kt.ls" || fail "cannot mount the test disk /dev/vdb: $(tr '\n' ' ' <"$w/kt.ls")"
	guest "modprobe uinput; modprobe gpiosim; ls -l /dev/uinput && ls -d /sys/kernel/config/gpio-sim" >"$w/kt.dev" ||
		fail "no /dev/uinput or /sys/kernel/config/gpio-sim in the guest: $(tr '\n' ' ' <"$w/kt.dev")"
	for t in "${kernel_tests[@]}"; do
		read -r pkg name <<<"$t"
		# The binary's output goes to a file in the guest (the console also
		# carries termagent's log); the verdict is read from that file.
		guest "cd /tmp && /mnt/tests/termagent_hal_$pkg.test -test.run '^(TestCardReaderOnUinput|TestReaderOnGPIOSim)\$' -test.v -test.timeout 60s >/tmp/$pkg.out 2>&1; echo rc=\$?; cat /tmp/$pkg.out" >"$w/kt.$pkg.out" || true
		out=$(guest "sed -n 's/^--- \([A-Z]*\): $name (\([0-9.]*s\))\$/\1 \2/p' /tmp/$pkg.out" | grep -E '^[A-Z]+ [0-9.]+s$' | head -n 1) || true
		case "$out" in
		PASS\ *) passed=$((passed + 1)) got="$got, $name PASS ${out#PASS }" ;;
		'') got="$got, $name did not run ($(grep -aE '^(rc=|FAIL|ok|PASS|panic|.*no such)' "$w/kt.$pkg.out" | tr -d '\r' | head -n 3 | tr '\n' ' '))" ;;
		*) got="$got, $name ${out% *}: $(grep -aE '(_test\.go:[0-9]+:|SKIP|skip)' "$w/kt.$pkg.out" | tr -d '\r' | head -n 2 | sed 's/^ *//' | tr '\n' ' ')" ;;
		esac
	done
	got=${got#, }
	figures "tests passed $passed of ${#kernel_tests[@]}: $got"
	[ "$passed" = "${#kernel_tests[@]}" ] || fail "tests passed $passed of ${#kernel_tests[@]}: $got"
}

# ---- all architectures side by side.
arch_pids=()
trap 'for p in "${arch_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait; exit 143' TERM INT
for a in "${archs[@]}"; do
	[ -f "$dist/image-linux-$a/vmlinuz" ] || { echo "system-test: $dist/image-linux-$a missing: run make image ARCH=$a" >&2; exit 1; }
	(run_arch "$a") >"$top/$a.out" 2>&1 &
	arch_pids+=($!)
done
# A bound on the whole run, whatever happens inside (default 15 min).
(
	sleep "${ST_DEADLINE:-900}" &
	s=$!
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	wait "$s"
	echo "system-test: deadline of ${ST_DEADLINE:-900}s passed: stopping" >&2
	echo "stopped at the deadline (ST_DEADLINE=${ST_DEADLINE:-900}s)" >"$top/deadline"
	for p in "${arch_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
) &
watchdog=$!
for p in "${arch_pids[@]}"; do wait "$p" || true; done
kill "$watchdog" 2>/dev/null || true

passed=0 failed=0 skipped=0
printf '%-6s %-2s %-55s %-5s %s\n' ARCH N SCENARIO RESULT FIGURES
for a in "${archs[@]}"; do
	[ -s "$top/$a/rows" ] || { printf '%-6s %-2s %-55s %-5s %s\n' "$a" - "setup" FAIL "$(cat "$top/deadline" 2>/dev/null) $(tail -n 3 "$top/$a.out" | tr '\n' ' ')"; failed=$((failed + 1)); continue; }
	while IFS=$'\t' read -r ar n title result fig; do
		printf '%-6s %-2s %-55s %-5s %s\n' "$ar" "$n" "$title" "$result" "$fig"
		case "$result" in PASS) passed=$((passed + 1)) ;; FAIL) failed=$((failed + 1)) ;; SKIP) skipped=$((skipped + 1)) ;; esac
	done <"$top/$a/rows"
done
if [ -s "$top/failures" ]; then
	echo "==== failures"
	cat "$top/failures"
fi
echo "system-test: $passed passed, $failed failed, $skipped skipped in $((SECONDS - t_start))s"
if [ "${KEEP:-0}" = 1 ] || [ $failed -gt 0 ]; then echo "system-test: work directory $top"; else rm -rf "$top"; fi
[ $failed -eq 0 ]
