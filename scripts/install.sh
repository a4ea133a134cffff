#!/bin/sh
# Installs termagent on a terminal, or into an image tree with DESTDIR.
# POSIX sh (runs under BusyBox ash); idempotent: run it again to upgrade.
#
#   scripts/install.sh [--bin FILE] [--init auto|systemd|sysv|none] [--inittab] [--now]
#   DESTDIR=/path/to/rootfs scripts/install.sh --bin dist/linux-armv7/termagent --init systemd
#
#   --bin FILE   the termagent binary; default: termagent beside this script
#                (a dist tarball), else bin/termagent of the source tree
#   --init KIND  systemd: the unit (Type=notify, watchdog, sandboxed), enabled;
#                sysv: /etc/init.d/termagent (BusyBox or SysV, with respawn);
#                none: neither; auto (default): systemd when the system (or
#                DESTDIR) has systemd, else sysv
#   --inittab    with sysv: add "::respawn:/etc/init.d/termagent run" to
#                $DESTDIR/etc/inittab (BusyBox init) if it is not there; a
#                tree without an inittab gets none (only a warning): a
#                one-line inittab would replace BusyBox's built-in default
#   --now        not with DESTDIR: (re)start the service after installing
#
# Environment: DESTDIR (image root, default none), PREFIX (default /usr/local),
# BINDIR (default $PREFIX/bin).
#
# What it does:
#   - $BINDIR/termagent                     0755
#   - /etc/termagent/termagent.yaml         0644, from the example, only if absent
#     /etc/termagent/termagent.example.yaml 0644, always (the reference)
#   - /var/lib/termagent                    0700, owned by termagent
#   - the user termagent (system user, no login) in the groups dialout, gpio
#     and input, created when missing. With DESTDIR no user is created on the
#     build machine: /usr/lib/sysusers.d/termagent.conf creates it at first
#     boot (systemd), or add it with your image builder (README).
#   - /etc/udev/rules.d/99-termagent.rules: serial ports to dialout, GPIO chips
#     to gpio, example stable names
#   - the service (see --init)
set -eu
# Whatever the caller's umask, the tree gets the modes listed above.
umask 022

here=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
USER_NAME=termagent
GROUPS_WANTED="dialout gpio input"

bin=
init=auto
inittab=0
now=0
while [ $# -gt 0 ]; do
	case "$1" in
	--bin) bin=${2:?--bin needs a file}; shift 2 ;;
	--bin=*) bin=${1#--bin=}; shift ;;
	--init) init=${2:?--init needs a kind}; shift 2 ;;
	--init=*) init=${1#--init=}; shift ;;
	--inittab) inittab=1; shift ;;
	--now) now=1; shift ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

# find_file NAME CANDIDATE... prints the first candidate that exists.
find_file() {
	what=$1
	shift
	for f in "$@"; do
		if [ -f "$f" ]; then
			echo "$f"
			return 0
		fi
	done
	die "cannot find $what (looked in: $*)"
}

if [ -z "$bin" ]; then
	bin=$(find_file "the termagent binary (use --bin)" "$here/termagent" "$here/../bin/termagent")
fi
[ -f "$bin" ] || die "--bin $bin: no such file"
example=$(find_file "termagent.example.yaml" "$here/termagent.example.yaml" "$here/../cmd/termagent/termagent.example.yaml")

# systemd_running: this (live) system was booted with systemd.
systemd_running() { [ -d /run/systemd/system ]; }
case "$init" in
auto)
	if [ -n "$DESTDIR" ]; then
		# An image: does it contain systemd?
		if [ -d "$DESTDIR/lib/systemd/system" ] || [ -d "$DESTDIR/usr/lib/systemd/system" ]; then
			init=systemd
		else
			init=sysv
		fi
	elif systemd_running; then
		init=systemd
	else
		init=sysv
	fi
	;;
systemd | sysv | none) ;;
*) die "--init $init: want auto, systemd, sysv or none" ;;
esac
if [ -n "$DESTDIR" ] && [ "$now" = 1 ]; then
	die "--now makes no sense with DESTDIR"
fi
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
	die "run as root (or set DESTDIR to install into an image tree)"
fi

# The user and groups, on a live system only.
has_group() { grep -q "^$1:" /etc/group; }
ensure_user() {
	for g in $GROUPS_WANTED; do
		has_group "$g" && continue
		if command -v groupadd >/dev/null 2>&1; then
			groupadd --system "$g"
		else
			addgroup -S "$g"
		fi
		say "created group $g"
	done
	if ! id "$USER_NAME" >/dev/null 2>&1; then
		nologin=/usr/sbin/nologin
		[ -x "$nologin" ] || nologin=/sbin/nologin
		[ -x "$nologin" ] || nologin=/bin/false
		if command -v useradd >/dev/null 2>&1; then
			useradd --system --user-group --home-dir /var/lib/termagent --no-create-home \
				--shell "$nologin" --comment "termagent terminal agent" "$USER_NAME"
		else
			has_group "$USER_NAME" || addgroup -S "$USER_NAME"
			adduser -S -D -H -h /var/lib/termagent -s "$nologin" -G "$USER_NAME" -g "termagent terminal agent" "$USER_NAME"
		fi
		say "created user $USER_NAME"
	fi
	for g in $GROUPS_WANTED; do
		# Already a member? /etc/group lists members after the third colon.
		if grep "^$g:" /etc/group | cut -d: -f4 | tr ',' '\n' | grep -qx "$USER_NAME"; then
			continue
		fi
		if command -v usermod >/dev/null 2>&1; then
			usermod -a -G "$g" "$USER_NAME"
		else
			addgroup "$USER_NAME" "$g"
		fi
		say "added $USER_NAME to group $g"
	done
}

# put SRC DEST MODE installs a file, creating its directory 0755.
put() {
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2.tmp.$$"
	chmod "$3" "$2.tmp.$$"
	mv -f "$2.tmp.$$" "$2"
}

# put_bindir SRC DEST MODE installs a file with /usr/local/bin/termagent
# replaced by $BINDIR/termagent.
put_bindir() {
	mkdir -p "$(dirname "$2")"
	sed "s|/usr/local/bin/termagent|$BINDIR/termagent|g" "$1" >"$2.tmp.$$"
	chmod "$3" "$2.tmp.$$"
	mv -f "$2.tmp.$$" "$2"
}

[ -z "$DESTDIR" ] && ensure_user

# Binary, configuration, state.
put "$bin" "$DESTDIR$BINDIR/termagent" 0755
mkdir -p "$DESTDIR/etc/termagent"
chmod 0755 "$DESTDIR/etc/termagent"
put "$example" "$DESTDIR/etc/termagent/termagent.example.yaml" 0644
if [ -e "$DESTDIR/etc/termagent/termagent.yaml" ]; then
	say "kept the existing /etc/termagent/termagent.yaml"
else
	put "$example" "$DESTDIR/etc/termagent/termagent.yaml" 0644
	say "installed /etc/termagent/termagent.yaml: set server.address and the drivers"
fi
mkdir -p "$DESTDIR/var/lib/termagent"
chmod 0700 "$DESTDIR/var/lib/termagent"
if [ -z "$DESTDIR" ]; then
	chown "$USER_NAME:$USER_NAME" /var/lib/termagent
fi

# Device permissions and the user for images.
put "$here/99-termagent.rules" "$DESTDIR/etc/udev/rules.d/99-termagent.rules" 0644
put "$here/termagent.sysusers" "$DESTDIR/usr/lib/sysusers.d/termagent.conf" 0644
if [ -z "$DESTDIR" ] && command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload 2>/dev/null || true
fi

# The service.
case "$init" in
systemd)
	if [ -n "$DESTDIR" ]; then
		unit=/usr/lib/systemd/system/termagent.service
	else
		unit=/etc/systemd/system/termagent.service
	fi
	put_bindir "$here/termagent.service" "$DESTDIR$unit" 0644
	if [ -n "$DESTDIR" ]; then
		# What `systemctl enable` does, without systemctl.
		mkdir -p "$DESTDIR/etc/systemd/system/multi-user.target.wants"
		ln -sfn "$unit" "$DESTDIR/etc/systemd/system/multi-user.target.wants/termagent.service"
	else
		# enable works without a running systemd (it makes the links);
		# daemon-reload and restart need one.
		systemd_running && systemctl daemon-reload
		systemctl enable termagent.service
		if [ "$now" = 1 ]; then
			systemd_running || die "--now: systemd is not running here"
			systemctl restart termagent.service
		fi
	fi
	say "installed and enabled $unit"
	;;
sysv)
	put_bindir "$here/termagent.init" "$DESTDIR/etc/init.d/termagent" 0755
	if [ "$inittab" = 1 ]; then
		line="::respawn:/etc/init.d/termagent run"
		if [ ! -f "$DESTDIR/etc/inittab" ]; then
			# BusyBox init without /etc/inittab runs its built-in default
			# (rcS, shells on the consoles). A new inittab holding only our
			# line would replace all of that and the image would not boot.
			say "warning: no /etc/inittab in ${DESTDIR:-this system}: not creating one (it would replace BusyBox's built-in default); add '$line' to the image's inittab, or run '/etc/init.d/termagent start' from rcS" >&2
		elif grep -qxF "$line" "$DESTDIR/etc/inittab"; then
			say "/etc/inittab already has '$line'"
		else
			# Keep the file's last line intact if it lacks a newline.
			if [ -s "$DESTDIR/etc/inittab" ] && [ "$(tail -c 1 "$DESTDIR/etc/inittab" | od -An -c | tr -d ' ')" != '\n' ]; then
				echo >>"$DESTDIR/etc/inittab"
			fi
			echo "$line" >>"$DESTDIR/etc/inittab"
			say "added '$line' to /etc/inittab"
			if [ -z "$DESTDIR" ]; then kill -HUP 1 2>/dev/null || true; fi
		fi
	elif [ -z "$DESTDIR" ] && command -v update-rc.d >/dev/null 2>&1; then
		update-rc.d termagent defaults >/dev/null
	else
		say "installed /etc/init.d/termagent: add '::respawn:/etc/init.d/termagent run' to /etc/inittab (or use --inittab), or link it from /etc/rc?.d"
	fi
	if [ "$now" = 1 ] && [ "$inittab" = 0 ]; then
		/etc/init.d/termagent restart
	fi
	;;
none) ;;
esac
say "done"
