#!/usr/bin/env bash
# Packs the files a device image needs (`make rootfs ARCH=arm64|armv7`, after
# make arm64 / make arm) as a root-relative tarball an image builder drops in:
#
#   scripts/rootfs.sh ARCH DIST VERSION     e.g. arm64 dist v1.2.0
#
# DIST/termagent-rootfs-VERSION-linux-ARCH.tar.gz holds, from /:
#   usr/bin/termagent                           the static binary
#   etc/termagent/termagent.yaml, .example.yaml the configuration (example)
#   usr/lib/systemd/system/termagent.service    systemd unit, enabled through
#   etc/systemd/system/multi-user.target.wants/  its link
#   etc/init.d/termagent                        BusyBox/SysV init script
#   etc/udev/rules.d/99-termagent.rules         udev rules
#   usr/lib/sysusers.d/termagent.conf           sysusers (systemd images)
#   var/lib/termagent                           state directory, 0700
#   usr/share/termagent/users.table             Buildroot BR2_ROOTFS_USERS_TABLES line
#   usr/share/termagent/mdev.conf               BusyBox mdev lines (for /etc/mdev.conf)
#   usr/share/termagent/post-build.sh           adds the inittab line to a tree
#                                               that has an inittab (Buildroot
#                                               BR2_ROOTFS_POST_BUILD_SCRIPT)
# It is made by scripts/install.sh (DESTDIR, PREFIX=/usr) for both init
# systems, so an image gets exactly what install.sh installs on a device.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { sed -n '2,5p' "$0" >&2; exit 2; }
arch=$1 dist=$2 version=$3
case "$arch" in
arm64 | armv7 | amd64) ;;
*) echo "rootfs.sh: ARCH $arch: want arm64 or armv7" >&2; exit 2 ;;
esac
bin=$dist/linux-$arch/termagent
[ -x "$bin" ] || { echo "rootfs.sh: $bin missing: run make ${arch/armv7/arm} first" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -m 0755 "$root"
export DESTDIR=$root PREFIX=/usr
./scripts/install.sh --bin "$bin" --init systemd >/dev/null
./scripts/install.sh --bin "$bin" --init sysv >/dev/null
share=$root/usr/share/termagent
mkdir -p "$share"
cp scripts/image/users.table scripts/image/mdev.conf "$share/"
cp scripts/image/post-build.sh "$share/"
chmod 0644 "$share/users.table" "$share/mdev.conf"
chmod 0755 "$share/post-build.sh"

out=$dist/termagent-rootfs-$version-linux-$arch.tar.gz
# Reproducible: fixed owner, order and times; root-relative paths (./usr/...).
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C "$root" -czf "$out" .
echo "rootfs: $out"
