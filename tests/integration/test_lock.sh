#!/usr/bin/env bash
# One daemon per data directory: a second loketd on the same configuration,
# or on another configuration naming the same data directory, exits
# non-zero before it touches the store or the control socket, naming the
# first one's PID and the data directory; the first stays reachable with
# its control socket in place. The lock goes with its process: after a
# kill -9 a new loketd starts at once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

init_node "$T/a" uni
start_node "$T/a"
first=${NODE_PID[$T/a]}
data="$T/a/data"
expect_status 0 loket_in "$T/a" put expert ada --json '{"name":"Ada Lovelace"}'

# refused CONF NAME: a loketd on CONF must exit non-zero within 10 s; its
# stderr is left in $T/NAME.err.
refused() {
	local conf=$1 name=$2 pid status=0 deadline
	"$LOKETD" -c "$conf" 2>"$T/$name.err" &
	pid=$!
	deadline=$(($(date +%s%N) + 10 * 1000000000))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			fail "$name: a second loketd on $data still runs after 10s"
		fi
		sleep 0.05
	done
	wait "$pid" || status=$?
	[ "$status" != 0 ] || fail "$name: a second loketd on $data exited 0"
}

first_is_fine() {
	[ -S "$data/control.sock" ] || fail "$1: the first loketd's control socket is gone"
	kill -0 "$first" || fail "$1: the first loketd is gone"
	expect_status 0 loket_in "$T/a" status
	assert_contains "$OUT" "name: uni"
	expect_status 0 loket_in "$T/a" get expert ada
	assert_contains "$OUT" "Ada Lovelace"
}

refused "$T/a/loket.conf" second
err=$(cat "$T/second.err")
assert_contains "$err" "pid $first" "the second loketd's message"
assert_contains "$err" "data directory $data" "the second loketd's message"
assert_contains "$err" "$data/loketd.lock" "the second loketd's message"
if grep -q -e "ready" -e "listening" "$T/second.err"; then
	fail "the second loketd got as far as its sockets: $err"
fi
first_is_fine second

# Another configuration (another name, the same key) on the same directory.
mkdir "$T/b"
sed -e "s|^name = uni|name = other|" -e "s|^data = .*|data = $data|" \
	-e "s|^key = .*|key = $T/a/node.key|" "$T/a/loket.conf" >"$T/b/loket.conf"
refused "$T/b/loket.conf" other
assert_contains "$(cat "$T/other.err")" "pid $first" "the other configuration's message"
first_is_fine other
assert_contains "$(cat "$data/loketd.lock")" "$first loketd" "the lock file"

# kill -9 leaves no stale lock.
kill9_node "$T/a"
start_node "$T/a"
assert_contains "$(cat "$data/loketd.lock")" "${NODE_PID[$T/a]} loketd" "the lock file after a restart"
expect_status 0 loket_in "$T/a" get expert ada
stop_node "$T/a"
pass
