#!/usr/bin/env bash
# Installs the Debian packages loket needs to build, test and run its demo,
# saying which ones are missing; does nothing when all are present.
set -euo pipefail

# mandoc checks the man pages; lintian and systemd (for systemd-analyze)
# check the Debian package and its unit (tests/integration/test_package.sh).
packages=(build-essential cmake pkg-config clang-format jq
	libzmq3-dev libsodium-dev libsqlite3-dev libuv1-dev libmsgpack-dev
	libjansson-dev libcmocka-dev libmicrohttpd-dev sqlite3 curl python3 prometheus
	mandoc lintian systemd)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root, or install these packages first" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
