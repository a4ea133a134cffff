#!/usr/bin/env bash
# Packs one install tarball per architecture (`make dist`, after make arm
# and make arm64):
#
#   scripts/dist.sh DIST VERSION PLATFORM...     e.g. dist v1.2.0 linux-armv7 linux-arm64
#
# DIST/termagent-VERSION-PLATFORM.tar.gz holds termagent-VERSION-PLATFORM/
# with the static termagent, install.sh and the files it installs (unit,
# init script, udev rules, sysusers file, example configuration). On the
# device or into an image: tar xzf ...; cd termagent-*; ./install.sh
# (DESTDIR=... for an image). DIST/SHA256SUMS lists the tarballs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,4p' "$0" >&2; exit 2; }
dist=$1 version=$2
shift 2
files=(scripts/install.sh scripts/termagent.service scripts/termagent.init
	scripts/termagent.sysusers scripts/99-termagent.rules cmd/termagent/termagent.example.yaml)
tarballs=()
for platform in "$@"; do
	bin=$dist/$platform/termagent
	[ -x "$bin" ] || { echo "dist.sh: $bin missing: run make ${platform#linux-} first" >&2; exit 1; }
	name=termagent-$version-$platform
	stage=$(mktemp -d)
	mkdir "$stage/$name"
	cp "$bin" "${files[@]}" "$stage/$name/"
	# Reproducible: fixed owner, order and times.
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$stage" -czf "$dist/$name.tar.gz" "$name"
	rm -rf "$stage"
	tarballs+=("$name.tar.gz")
	echo "dist: $dist/$name.tar.gz"
done
(cd "$dist" && sha256sum "${tarballs[@]}" >SHA256SUMS)
