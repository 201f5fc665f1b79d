#!/usr/bin/env bash
# `npm run deb`: builds the Debian package from this tree into dist/deb/ (nothing is written outside it).
# Needs `npm ci` to have run (node_modules, native helper) and debhelper + dpkg-dev; uses no network.
# Extra arguments go to dpkg-buildpackage (e.g. -d to skip the build-dependency check).
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/deb
version="$(dpkg-parsechangelog -SVersion)"
arch="$(dpkg-architecture -qDEB_HOST_ARCH)"
rm -rf "$out"
mkdir -p "$out"

# debian/rules passes RBLOCKSYNC_DEB_DIR to dh_builddeb --destdir; dpkg-genbuildinfo and dpkg-genchanges
# look there (-u) instead of in the parent directory.
RBLOCKSYNC_DEB_DIR="$out" dpkg-buildpackage -us -uc -b \
	--buildinfo-file="$out/rblocksync_${version}_${arch}.buildinfo" --buildinfo-option="-u$out" \
	--changes-file="$out/rblocksync_${version}_${arch}.changes" --changes-option="-u$out" \
	"$@"

deb="$out/rblocksync_${version}_${arch}.deb"
test -f "$deb" || { echo "build-deb: $deb was not produced" >&2; exit 1; }
echo "$deb"
