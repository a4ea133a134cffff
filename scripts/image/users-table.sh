#!/bin/sh
# Applies Buildroot users-table lines (makeusers format, on stdin) to a tree's
# /etc/passwd and /etc/group, as Buildroot does with BR2_ROOTFS_USERS_TABLES:
#
#   users-table.sh TARGET_DIR <users.table
#
#   username uid group gid password home shell groups comment...
#
# (the password field is ignored here: the user never logs in)
#
# uid/gid -1 take the next free number from 100 (system accounts); missing
# supplementary groups are created. Used by scripts/image.sh for the test
# image; Buildroot itself needs only the table.
set -eu
target=${1:?usage: users-table.sh TARGET_DIR}
passwd=$target/etc/passwd
group=$target/etc/group
touch "$passwd" "$group"
# next_id FILE: the lowest number from 100 not used in FILE's third field.
next_id() {
	n=100
	while cut -d: -f3 "$1" | grep -qx "$n"; do n=$((n + 1)); done
	echo "$n"
}
# ensure_group NAME [GID]
ensure_group() {
	grep -q "^$1:" "$group" && return 0
	gid=$2
	[ "$gid" = -1 ] && gid=$(next_id "$group")
	echo "$1:x:$gid:" >>"$group"
}
while read -r user uid grp gid _pw home shell groups comment; do
	case "$user" in '' | '#'*) continue ;; esac
	ensure_group "$grp" "$gid"
	gid=$(grep "^$grp:" "$group" | cut -d: -f3)
	if ! grep -q "^$user:" "$passwd"; then
		[ "$uid" = -1 ] && uid=$(next_id "$passwd")
		echo "$user:x:$uid:$gid:$comment:$home:$shell" >>"$passwd"
	fi
	[ "$groups" = - ] && continue
	for g in $(echo "$groups" | tr ',' ' '); do
		ensure_group "$g" -1
		line=$(grep "^$g:" "$group")
		members=${line##*:}
		case ",$members," in *",$user,"*) continue ;; esac
		grep -v "^$g:" "$group" >"$group.tmp" || true
		echo "$line${members:+,}$user" >>"$group.tmp"
		mv -f "$group.tmp" "$group"
	done
done
