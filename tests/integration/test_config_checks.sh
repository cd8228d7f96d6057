#!/usr/bin/env bash
# loketd refuses, at once and naming FILE:LINE, a configuration whose values
# cannot work: a listen port beyond 65535 (it wrapped), an endpoint whose
# host is no address, a member key that is no Ed25519 point or all zeros,
# a member holding the node's own key (known once the key file is read),
# a file that is not a regular file (-c /dev/zero read for ever), and a
# line over the limit.
. "$(dirname "$0")/lib.sh"

init_node "$T/a" uni
own_key=$(member_field "$T/a.member" key)
good=$(cat "$T/a/loket.conf")
other=y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34=

# refused WHAT EXPECTED: loketd on $T/a/loket.conf exits 1 within 5 s, saying EXPECTED.
refused() {
	local got=0
	timeout 5 "$LOKETD" -c "$T/a/loket.conf" >"$T/.out" 2>"$T/.err" || got=$?
	[ "$got" = 1 ] || fail "$1: loketd exited $got, expected 1 (124: it hung): $(cat "$T/.err")"
	assert_contains "$(cat "$T/.err")" "$2" "$1"
}
conf() { printf '%s\n' "$good" "$@" >"$T/a/loket.conf"; }
conf_file=$(cd "$T/a" && pwd)/loket.conf

sed 's|^\(listen = \).*|\1tcp://127.0.0.1:113646|' <<<"$good" >"$T/a/loket.conf"
grep -q 113646 "$T/a/loket.conf" || printf 'listen = tcp://127.0.0.1:113646\n' >>"$T/a/loket.conf"
refused "a port above 65535" 'invalid listen "tcp://127.0.0.1:113646" (port "113646" is not a number from 1 to 65535)'

conf '[member b]' "key = $other" 'endpoint = tcp://256.1.1.1:7400'
refused "an IPv4 address out of range" \
	'invalid endpoint "tcp://256.1.1.1:7400" in [member b] (host "256.1.1.1" is not an IPv4 address)'

conf '[member b]' 'key = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
refused "an all-zero key" 'of [member b] is not a valid Ed25519 public key'

conf '[member self]' "key = $own_key"
line=$(grep -n "^key = $own_key" "$T/a/loket.conf" | cut -d: -f1)
refused "the node's own key" "$conf_file:$line: key \"$own_key\" of [member self] is this node's own key"

conf "; $(head -c 5000 /dev/zero | tr '\0' x)"
refused "a line over the limit" "$conf_file:$(($(wc -l <<<"$good") + 1)): line is longer than 4096 bytes"

got=0
timeout 5 "$LOKETD" -c /dev/zero 2>"$T/.err" || got=$?
[ "$got" = 1 ] || fail "-c /dev/zero: loketd exited $got, expected 1 (124: it hung)"
assert_contains "$(cat "$T/.err")" "/dev/zero: not a regular file" "-c /dev/zero"

# The good configuration still starts.
printf '%s\n' "$good" >"$T/a/loket.conf"
start_node "$T/a"
stop_node "$T/a"
pass
