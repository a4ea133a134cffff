#!/bin/sh
# termagent's image post-build step (POSIX sh):
#
#   post-build.sh TARGET_DIR
#
# Buildroot runs it as BR2_ROOTFS_POST_BUILD_SCRIPT with the target tree as
# its first argument; a Yocto recipe can run it from ROOTFS_POSTPROCESS_COMMAND.
# With BusyBox init (the tree has /etc/inittab) it adds the line that starts
# termagent's supervisor, once. A tree without /etc/inittab is left alone: a
# one-line inittab would replace BusyBox's built-in default and stop the boot.
# It also puts termagent's mdev lines first in an existing /etc/mdev.conf.
set -eu
target=${1:?usage: post-build.sh TARGET_DIR}
line="::respawn:/etc/init.d/termagent run"
inittab=$target/etc/inittab
if [ -f "$inittab" ]; then
	if ! grep -qxF "$line" "$inittab"; then
		if [ -s "$inittab" ] && [ "$(tail -c 1 "$inittab" | od -An -c | tr -d ' ')" != '\n' ]; then
			echo >>"$inittab"
		fi
		echo "$line" >>"$inittab"
		echo "termagent post-build: added '$line' to /etc/inittab"
	fi
elif [ -d "$target/usr/lib/systemd/system" ] || [ -d "$target/lib/systemd/system" ]; then
	: # systemd: the unit is enabled by its link
else
	echo "termagent post-build: warning: no /etc/inittab in $target: not creating one; start termagent from the image's init (/etc/init.d/termagent run)" >&2
fi
mdev=$target/etc/mdev.conf
conf=$(dirname "$0")/mdev.conf
if [ -f "$mdev" ] && [ -f "$conf" ] && ! grep -q '^# termagent:' "$mdev"; then
	# mdev takes the first matching line: termagent's go first.
	cat "$conf" "$mdev" >"$mdev.tmp.$$"
	mv -f "$mdev.tmp.$$" "$mdev"
	echo "termagent post-build: put termagent's lines first in /etc/mdev.conf"
fi
