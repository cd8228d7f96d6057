# The Debian package as `make package` makes it (cpack -G DEB on this
# build): its files (binaries stripped, the unit naming /usr, sysusers and
# tmpfiles, man pages, completion, /etc/loket without a key), its control
# fields (Depends: runtime libraries and adduser only), its maintainer
# scripts (the user made; the unit neither enabled nor started), the
# -dbgsym package beside it, no lintian error or warning, and the unit as
# installed rated at most 2.0 by `systemd-analyze security --offline=yes`.
# PID 1 here is not systemd, so the unit is checked offline; `dpkg -i` is
# not run (it would change this machine).
. "$(dirname "$0")/lib.sh"

if grep -q '^LOKET_SANITIZE:BOOL=ON' "$LOKET_BIN/CMakeCache.txt" 2>/dev/null; then
	echo "$TEST_NAME: skipped: the package is made from the plain build, not this one"
	exit 77
fi
for tool in cpack dpkg-deb dpkg-shlibdeps readelf lintian systemd-analyze; do
	command -v "$tool" >/dev/null || fail "$tool is needed (scripts/deps.sh installs it)"
done

(cd "$LOKET_BIN" && cpack -G DEB -B "$T/pkg" >"$T/cpack.log" 2>&1) ||
	fail "cpack failed: $(tail -n 5 "$T/cpack.log")"
deb=$(ls "$T"/pkg/loket_*_*.deb)
ddeb=$(ls "$T"/pkg/loket-dbgsym_*_*.ddeb)
[ -f "$deb" ] && [ -f "$ddeb" ] || fail "no .deb and -dbgsym .ddeb in $T/pkg"

# The files.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T/files"
for f in /usr/bin/loket /usr/sbin/loketd /usr/lib/systemd/system/loketd.service \
	/usr/lib/sysusers.d/loket.conf /usr/lib/tmpfiles.d/loket.conf \
	/usr/share/man/man1/loket.1.gz /usr/share/man/man8/loketd.8.gz \
	/usr/share/man/man5/loket.conf.5.gz /usr/share/bash-completion/completions/loket \
	/usr/share/doc/loket/copyright /usr/share/doc/loket/changelog.gz \
	/usr/share/doc/loket/examples/loket.conf.example /etc/loket/; do
	grep -qx "$f" "$T/files" || fail "the package lacks $f"
done
assert_eq "/etc/ /etc/loket/" "$(grep '^/etc' "$T/files" | tr '\n' ' ' | sed 's/ $//')" \
	"what the package puts in /etc: the directory, without a key or a configuration"
mkdir "$T/root"
dpkg-deb -x "$deb" "$T/root"
dpkg-deb -c "$ddeb" >"$T/dbgsym-files"
for bin in usr/bin/loket usr/sbin/loketd; do
	readelf -S "$T/root/$bin" >"$T/sections"
	! grep -qE '\.(debug_info|symtab)' "$T/sections" || fail "$bin is not stripped"
	id=$(readelf -n "$T/root/$bin" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
	[ -n "$id" ] || fail "$bin has no build id"
	grep -q "usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" "$T/dbgsym-files" ||
		fail "the -dbgsym package has no debug information for $bin (build id $id)"
done
unit="$T/root/usr/lib/systemd/system/loketd.service"
grep -qx 'ExecStart=/usr/sbin/loketd -c /etc/loket/loket.conf -k %d/node.key' "$unit" ||
	fail "the unit's ExecStart does not name /usr/sbin/loketd: $(grep ^ExecStart "$unit")"
grep -qx 'ExecReload=/usr/bin/loket -c /etc/loket/loket.conf reload' "$unit" ||
	fail "the unit's ExecReload does not run /usr/bin/loket reload"
grep -qx 'ConditionPathExists=/etc/loket/loket.conf' "$unit" ||
	fail "the unit would start before a node is configured"
grep -q '^u loket ' "$T/root/usr/lib/sysusers.d/loket.conf" || fail "sysusers makes no user loket"
zcat "$T/root/usr/share/man/man1/loket.1.gz" >"$T/loket.1"
grep -q '^\.SS "loket verify' "$T/loket.1" || fail "loket.1.gz has no commands"

# The control fields: runtime libraries (and adduser), nothing to build with.
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libzmq5 libsodium23 libsqlite3-0 libuv1 libjansson4 adduser; do
	assert_contains "$depends" "$lib" "Depends"
done
[[ "$depends" != *-dev* && "$depends" != *cmake* && "$depends" != *gcc* ]] ||
	fail "Depends names build dependencies: $depends"
assert_eq loket "$(dpkg-deb -f "$ddeb" Depends | sed 's/ (.*//')" "the -dbgsym package's Depends"

# The maintainer scripts: shell that parses, a user made, nothing enabled or started.
mkdir "$T/control"
dpkg-deb -e "$deb" "$T/control"
for s in postinst prerm postrm; do
	[ -x "$T/control/$s" ] || fail "no executable $s"
	sh -n "$T/control/$s" || fail "$s does not parse"
done
grep -q 'systemd-sysusers /usr/lib/sysusers.d/loket.conf' "$T/control/postinst" ||
	fail "postinst does not make the user with systemd-sysusers"
grep -q 'adduser --system' "$T/control/postinst" || fail "postinst has no adduser fallback"
! grep -E 'systemctl (enable|start)|deb-systemd-helper enable|deb-systemd-invoke start' \
	"$T/control/postinst" || fail "postinst enables or starts the unit"

# lintian: no error and no warning (the info-level tags left are in the README).
lintian --fail-on error,warning "$deb" "$ddeb" >"$T/lintian.log" 2>&1 ||
	fail "lintian: $(grep -v 'root privileges' "$T/lintian.log")"

# The unit as installed, offline: at most 2.0 (systemd-analyze counts tenths).
systemd-analyze security --offline=yes --threshold=20 --root="$T/root" loketd.service \
	>"$T/security.log" 2>&1 || fail "systemd-analyze security: $(tail -n 1 "$T/security.log")"
grep -q 'Overall exposure level for loketd.service: [01]\.[0-9] OK' "$T/security.log" ||
	fail "unexpected rating: $(tail -n 1 "$T/security.log")"

pass
