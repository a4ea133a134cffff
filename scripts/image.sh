#!/usr/bin/env bash
# Builds a bootable test image for QEMU's virt board (`make image ARCH=...`)
# from the rootfs tarball (`make rootfs`), Debian's kernel and BusyBox:
#
#   scripts/image.sh ARCH ROOTFS.tar.gz OUTDIR       ARCH: arm64 or armv7
#
# OUTDIR gets vmlinuz, initramfs.cpio.gz (BusyBox init, the rootfs tarball
# installed as an integrator would: overlay, users-table line, post-build
# step adding the inittab line) and qemu.args (the machine's fixed options).
# termagent starts through its own init script, as the user termagent.
#
# The kernel (linux-image-arm64 / linux-image-armmp-lpae, resolved through the
# meta-package), busybox-static and the modules the image loads are fetched
# with `apt-get download` into IMAGE_CACHE (default ~/.cache/termagent-image)
# through a private apt state (the host's dpkg is not touched) and kept there:
# a second run downloads nothing. gpio-sim, which Debian does not build, is
# compiled there as an out-of-tree module when its sources and cross compiler
# are at hand (build_gpiosim below); the image works without it.
#
# The guest (see scripts/image/rcS): console on the first PL011 UART with a
# root shell; kernel arguments ta.door=lcus|gpio pick the termagent
# configuration; /dev/vda (if present, ext4) is mounted as /var/lib/termagent;
# eth0 is 10.0.2.15/24 and the server is 10.0.2.100:49003.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { sed -n '2,5p' "$0" >&2; exit 2; }
arch=$1 rootfs=$2 out=$3
cache=${IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/termagent-image}
case "$arch" in
arm64) darch=arm64 meta=linux-image-arm64 ;;
armv7) darch=armhf meta=linux-image-armmp-lpae ;;
*) echo "image.sh: ARCH $arch: want arm64 or armv7" >&2; exit 2 ;;
esac
[ -f "$rootfs" ] || { echo "image.sh: $rootfs missing: run make rootfs ARCH=$arch" >&2; exit 1; }
for tool in apt-get dpkg-deb cpio gzip depmod modprobe; do
	command -v "$tool" >/dev/null || { echo "image.sh: $tool not found (Debian: apt-get install cpio kmod)" >&2; exit 1; }
done
say() { echo "image $arch: $*"; }
# The modules the image loads (with their dependencies); absent or built-in ones are skipped.
modules=(virtio_pci virtio_net virtio_blk ext4 crc32c_generic xhci_pci usbserial ftdi_sio configfs uinput evdev)

# ---- private apt state: the host's sources, for amd64, arm64 and armhf.
apt_dir=$cache/apt
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=-"
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
	-o "Dir::State::status=$apt_dir/status"
	-o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64" -o "APT::Architectures::=armhf"
	-o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt_ready=0
apt_setup() {
	[ $apt_ready = 1 ] && return 0
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	touch "$apt_dir/status"
	# Debian's own sources from the host's configuration (deb822 and one-line).
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk 'function flush() { if (u ~ /debian/ && t ~ /deb/ && t !~ /deb-src/) { n = split(s, ss, " "); for (i = 1; i <= n; i++) print "deb [arch=amd64,arm64,armhf" (k ? " signed-by=" k : "") "] " u " " ss[i] " " c } u = s = c = k = t = "" }
				/^[ \t]*$/ { flush(); next }
				/^Types:/ { t = $0 } /^URIs:/ { u = $2 } /^Suites:/ { $1 = ""; s = $0 } /^Components:/ { $1 = ""; c = $0 } /^Signed-By:/ { k = $2 }
				END { flush() }' "$f"
		done
		true
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v '^#' |
			awk '$1 == "deb" && /debian/ { if ($2 ~ /^\[/) { sub(/^\[/, "[arch=amd64,arm64,armhf ", $2) } else { $1 = "deb [arch=amd64,arm64,armhf]" } print }'
	} | sed "s/  */ /g" >"$apt_dir/sources.list" || true
	[ -s "$apt_dir/sources.list" ] || { echo "image.sh: no Debian apt sources on this machine" >&2; exit 1; }
	# Refresh at most once a day; one foreign index failing is only a warning.
	if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
		say "apt-get update (private state in $apt_dir)"
		apt-get "${apt_opts[@]}" -q update >"$apt_dir/update.log" 2>&1 ||
			{ say "warning: apt-get update: $(grep -E '^(E|W):' "$apt_dir/update.log" | head -n 3 | tr '\n' ' ')"; }
	fi
	apt_ready=1
}
# fetch PKG: downloads PKG (name:arch) into $cache/debs unless a .deb of it is there; prints its path.
fetch() {
	local pkg=$1 name=${1%%:*} a=${1##*:} f
	f=$(ls "$cache/debs/${name}_"*"_$a.deb" "$cache/debs/${name}_"*"_all.deb" 2>/dev/null | head -n 1 || true)
	if [ -z "$f" ]; then
		apt_setup
		mkdir -p "$cache/debs"
		(cd "$cache/debs" && apt-get "${apt_opts[@]}" -q download "$pkg" >&2) || { echo "image.sh: apt-get download $pkg failed" >&2; exit 1; }
		f=$(ls "$cache/debs/${name}_"*"_$a.deb" "$cache/debs/${name}_"*"_all.deb" 2>/dev/null | head -n 1)
	fi
	echo "$f"
}

# ---- kernel: the versioned package behind the meta-package, extracted once.
kdir=$cache/$arch/kernel
if [ ! -f "$kdir/ready" ]; then
	apt_setup
	kpkg=$(apt-cache "${apt_opts[@]}" depends "$meta:$darch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2; exit }')
	[ -n "$kpkg" ] || { echo "image.sh: cannot resolve $meta:$darch (apt-get update failed?)" >&2; exit 1; }
	say "kernel $kpkg"
	deb=$(fetch "$kpkg:$darch")
	tmp=$(mktemp -d)
	dpkg-deb -x "$deb" "$tmp"
	kver=$(ls "$tmp/lib/modules" | head -n 1)
	rm -rf "$kdir"
	mkdir -p "$kdir/lib/modules/$kver"
	cp "$tmp/boot/vmlinuz-$kver" "$kdir/vmlinuz"
	cp "$tmp/lib/modules/$kver/"modules.{builtin,builtin.modinfo,order} "$kdir/lib/modules/$kver/" 2>/dev/null || true
	# Only the modules the image loads, with their dependencies (the package
	# ships no modules.dep: depmod makes one for modprobe to resolve them).
	depmod -b "$tmp" "$kver"
	for m in "${modules[@]}"; do
		modprobe -d "$tmp" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }'
	done | sort -u | while read -r ko; do
		rel=${ko#"$tmp/lib/modules/$kver/"}
		mkdir -p "$kdir/lib/modules/$kver/$(dirname "$rel")"
		cp "$ko" "$kdir/lib/modules/$kver/$rel"
	done
	echo "$kver" >"$kdir/version"
	rm -rf "$tmp"
	# linux-headers for the gpio-sim build are fetched by gpio-sim.sh.
	echo "$kpkg" >"$kdir/package"
	touch "$kdir/ready"
fi
kver=$(cat "$kdir/version")

# ---- BusyBox.
bdir=$cache/$arch/busybox
if [ ! -x "$bdir/busybox" ]; then
	deb=$(fetch "busybox-static:$darch")
	tmp=$(mktemp -d)
	dpkg-deb -x "$deb" "$tmp"
	mkdir -p "$bdir"
	cp "$tmp/bin/busybox" "$bdir/busybox"
	rm -rf "$tmp"
fi

# ---- gpio-sim (optional; its absence is reported by the system test).
# Debian builds neither GPIO_SIM nor IRQ_SIM: build both as one out-of-tree
# module (gpiosim.ko) from linux-source against the kernel's headers, with
# the C cross compiler. Two adjustments for 6.1: irq_to_desc is not exported
# to modules (generic_handle_irq does the same there), and the OF device table
# line trips the host modpost (it only feeds module aliases).
build_gpiosim() {
	local cc ver abi flavour tmp src hdr
	case "$arch" in
	arm64) karch=arm64 cc=aarch64-linux-gnu- ;;
	armv7) karch=arm cc=arm-linux-gnueabihf- ;;
	esac
	command -v "${cc}gcc" >/dev/null || { echo "no ${cc}gcc (Debian: gcc-${cc%-}... cross compiler)"; return 1; }
	command -v make >/dev/null || { echo "no make"; return 1; }
	apt_setup
	ver=$(apt-cache "${apt_opts[@]}" show "$(cat "$kdir/package"):$darch" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
	[ -n "$ver" ] || { echo "cannot find the version of $(cat "$kdir/package")"; return 1; }
	abi=$(echo "$kver" | cut -d- -f1,2)
	flavour=${kver#"$abi"-}
	tmp=$(mktemp -d)
	local d name a
	mkdir -p "$cache/debs"
	for p in "linux-headers-$kver:$darch" "linux-headers-$abi-common:all" "linux-kbuild-6.1:amd64" "linux-source-6.1:all"; do
		name=${p%%:*} a=${p#*:}
		ls "$cache/debs/${name}_${ver}_$a.deb" >/dev/null 2>&1 && continue
		(cd "$cache/debs" && apt-get "${apt_opts[@]}" -q download "$name:$a=$ver") >&2 ||
			{ echo "apt-get download $name:$a=$ver failed"; rm -rf "$tmp"; return 1; }
	done
	for d in "$cache/debs/linux-headers-${kver}_${ver}_"*.deb "$cache/debs/linux-headers-$abi-common_${ver}_"*.deb "$cache/debs/linux-kbuild-6.1_${ver}_amd64.deb"; do
		dpkg-deb -x "$d" "$tmp/x"
	done
	hdr=$tmp/x/usr/src/linux-headers-$kver
	sed -i "s|/usr/src/|$tmp/x/usr/src/|g" "$hdr/Makefile"
	mkdir -p "$tmp/m"
	dpkg-deb --fsys-tarfile "$cache/debs/linux-source-6.1_${ver}_all.deb" | tar -xO --wildcards './usr/src/linux-source-6.1.tar.xz' |
		tar -xJ -C "$tmp/m" --strip-components=3 --wildcards '*/drivers/gpio/gpio-sim.c' '*/drivers/gpio/gpiolib.h' '*/kernel/irq/irq_sim.c' 2>/dev/null || true
	[ -f "$tmp/m/gpio-sim.c" ] && [ -f "$tmp/m/irq_sim.c" ] || { echo "gpio-sim sources not found in linux-source-6.1"; rm -rf "$tmp"; return 1; }
	sed -i 's/handle_simple_irq(irq_to_desc(\([a-z_>.-]*\)))/generic_handle_irq(\1)/' "$tmp/m/irq_sim.c"
	sed -i '/MODULE_DEVICE_TABLE(of,/d' "$tmp/m/gpio-sim.c"
	printf 'obj-m := gpiosim.o\ngpiosim-y := gpio-sim.o irq_sim.o\n' >"$tmp/m/Kbuild"
	if ! make -C "$hdr" M="$tmp/m" ARCH="$karch" CROSS_COMPILE="$cc" modules >"$tmp/build.log" 2>&1; then
		echo "build failed: $(grep -E 'error|Error' "$tmp/build.log" | head -n 3 | tr '\n' ' ')"
		rm -rf "$tmp"
		return 1
	fi
	mkdir -p "$cache/$arch/gpio-sim"
	cp "$tmp/m/gpiosim.ko" "$cache/$arch/gpio-sim/gpiosim.ko"
	rm -rf "$tmp"
}
gpiosim=
if [ -f "$cache/$arch/gpio-sim/gpiosim.ko" ]; then
	gpiosim=$cache/$arch/gpio-sim/gpiosim.ko
elif why=$(build_gpiosim 2>"$cache/$arch/gpio-sim.log"); then
	gpiosim=$cache/$arch/gpio-sim/gpiosim.ko
	say "built gpio-sim ($(du -k "$gpiosim" | cut -f1) KiB)"
else
	say "no gpio-sim module: $why"
fi

# ---- the tree.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,dev,proc,sys,run,tmp,root,mnt,var/log}
chmod 1777 "$tree/tmp"
cp "$bdir/busybox" "$tree/bin/busybox"
ln -s busybox "$tree/bin/sh"
ln -s bin/busybox "$tree/init"
ln -s ../bin/busybox "$tree/sbin/init"
cp -a "$kdir/lib" "$tree/"
if [ -n "$gpiosim" ]; then
	mkdir -p "$tree/lib/modules/$kver/extra"
	cp "$gpiosim" "$tree/lib/modules/$kver/extra/gpiosim.ko"
fi
depmod -b "$tree" "$kver"

# The base system an image builder would provide: users, groups, inittab, rcS, mdev.
cat >"$tree/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
PW
printf 'root:x:0:\ntty:x:5:\ndialout:x:20:\n' >"$tree/etc/group"
printf 'root::19000:0:99999:7:::\n' >"$tree/etc/shadow"
chmod 0600 "$tree/etc/shadow"
cat >"$tree/etc/inittab" <<'IT'
::sysinit:/etc/init.d/rcS
::respawn:-/bin/sh
::shutdown:/bin/umount -a -r
IT
printf '# the image base: everything else root-only\n' >"$tree/etc/mdev.conf"
cp scripts/image/rcS "$tree/etc/init.d/rcS"
chmod 0755 "$tree/etc/init.d/rcS"
mkdir -p "$tree/etc/default"
# The supervisor's and termagent's output go to the console (no syslogd here).
printf 'TERMAGENT_LOG=console\nRESPAWN_DELAY=1\n' >"$tree/etc/default/termagent"

# The integrator's steps (README "Building for the device"): overlay, users-table line, post-build.
tar -xzf "$rootfs" -C "$tree" --no-same-owner
./scripts/image/users-table.sh "$tree" <"$tree/usr/share/termagent/users.table"
"$tree/usr/share/termagent/post-build.sh" "$tree" >/dev/null
# The test configurations (scripts/image/rcS picks one from the kernel command line).
cp scripts/image/termagent-lcus.yaml scripts/image/termagent-gpio.yaml "$tree/etc/termagent/"

mkdir -p "$out"
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out/initramfs.cpio.gz.tmp"
mv -f "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "$kdir/vmlinuz" "$out/vmlinuz"
case "$arch" in
arm64) echo "qemu-system-aarch64 -M virt -cpu cortex-a53" ;;
armv7) echo "qemu-system-arm -M virt -cpu cortex-a15" ;;
esac >"$out/qemu.args"
echo "${gpiosim:+gpio-sim}" >"$out/features"
if [ -z "$gpiosim" ]; then echo "${why:-not built}" >"$out/gpio-sim.why"; else rm -f "$out/gpio-sim.why"; fi
say "$out: kernel $kver, initramfs $(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB${gpiosim:+, gpio-sim}"
