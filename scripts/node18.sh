#!/usr/bin/env bash
# Runs Debian bookworm's nodejs 18 (what Proxmox VE 8 hosts have) with the given arguments, without installing it.
# Usage: scripts/node18.sh ARGS...   e.g. scripts/node18.sh dist/bundle/rblocksync.mjs --version
# The packages are fetched once with apt-get download into .cache/node18 (or $RBLOCKSYNC_NODE18_CACHE) and
# unpacked there. Debian's node loads some builtins from /usr/share/nodejs, so that directory alone is
# bind-mounted from the cache inside a private mount namespace (unshare -m; as non-root, unshare -rm).
set -euo pipefail

version="${RBLOCKSYNC_NODE18_VERSION:-18.20.4+dfsg-1~deb12u3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${RBLOCKSYNC_NODE18_CACHE:-$root/.cache/node18}"
tree="$cache/root"

fetch() {
	local work
	mkdir -p "$cache"
	work="$(mktemp -d "$cache/.fetch.XXXXXX")"
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	(
		cd "$work"
		apt-get download -q=2 -o APT::Sandbox::User=root "nodejs=$version" "libnode108=$version" \
			libc-ares2 node-acorn node-cjs-module-lexer node-undici >&2
		mkdir root
		for deb in ./*.deb; do
			dpkg -x "$deb" root
		done
	)
	if [ ! -x "$work/root/usr/bin/node" ]; then
		echo "node18.sh: apt-get download did not produce usr/bin/node" >&2
		exit 1
	fi
	rm -rf "$tree"
	mv "$work/root" "$tree"
	rm -rf "$work"
	trap - EXIT
}

if [ ! -x "$tree/usr/bin/node" ]; then
	fetch
fi

if [ ! -d /usr/share/nodejs ]; then
	# The mount point must exist; an empty directory is harmless to the host.
	mkdir -p /usr/share/nodejs 2>/dev/null || {
		echo "node18.sh: cannot create the mount point /usr/share/nodejs (run as root once)" >&2
		exit 1
	}
fi

unshare_flags=(-m)
if [ "$(id -u)" != 0 ]; then
	unshare_flags=(-r -m)
fi

# The inner shell receives the paths as arguments, never inside the command string.
exec unshare "${unshare_flags[@]}" sh -c '
	mount --bind "$1" /usr/share/nodejs || exit 1
	shift
	exec "$@"
' node18 "$tree/usr/share/nodejs" \
	env "LD_LIBRARY_PATH=$tree/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
	"$tree/usr/bin/node" "$@"
