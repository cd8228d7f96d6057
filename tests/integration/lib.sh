# Shared helpers for the integration tests: real loketd processes in a
# temporary directory, driven through the loket CLI. Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#   init_node "$T/a" a tcp://127.0.0.1:7401
#   start_node "$T/a"
#   loket_in "$T/a" put expert ada --json '{"name":"Ada"}'
#
# Every wait polls a condition against a deadline; nothing sleeps in place
# of a condition. The EXIT trap stops every loketd this test started and
# removes the temporary directory $T; if the test exits non-zero, $T is
# kept and the end of each daemon's log (DIR/loketd.log) is printed.
#
# LOKET_BIN is the CMake build directory (loket and loketd in it), LOKET_SRC
# the repository root; both default to what a local run would use.

set -euo pipefail

LOKET_SRC=${LOKET_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LOKET_BIN=${LOKET_BIN:-$LOKET_SRC/build}
LOKET="$LOKET_BIN/loket"
LOKETD="$LOKET_BIN/loketd"
TEST_NAME=$(basename "$0" .sh)

[ -x "$LOKET" ] || { echo "$TEST_NAME: no loket at $LOKET (set LOKET_BIN)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/loket-$TEST_NAME.XXXXXX")
declare -A NODE_PID=()
# Commands (each one string) that cleanup runs once the daemons are gone,
# like unmounting a file system the test mounted in $T.
AT_CLEANUP=()

# Stops every daemon still running (and any other process a test put in
# NODE_PID), runs AT_CLEANUP, then removes $T unless the test failed (exit
# status 77 is a skip, see tests/CMakeLists.txt).
cleanup() {
	local status=$? dir cmd
	for dir in "${!NODE_PID[@]}"; do
		kill -KILL "${NODE_PID[$dir]}" 2>/dev/null || true
		wait "${NODE_PID[$dir]}" 2>/dev/null || true
	done
	for cmd in "${AT_CLEANUP[@]}"; do
		eval "$cmd" || true
	done
	if [ "$status" = 0 ] || [ "$status" = 77 ]; then # passed, or skipped
		rm -rf "$T"
	else
		for log in "$T"/*/loketd.log; do
			[ -f "$log" ] || continue
			echo "--- $log" >&2
			tail -n 40 "$log" >&2
		done
		echo "$TEST_NAME: FAILED; files kept in $T" >&2
	fi
}
trap cleanup EXIT

# fail MESSAGE: stops the test.
fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}

# pass: the last line of a test, so that its log ends with a verdict.
pass() {
	echo "$TEST_NAME: ok"
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
	case "$1" in
	*"$2"*) ;;
	*) fail "${3:-output}: expected to contain '$2', got: $1" ;;
	esac
}

# expect_status STATUS CMD...: runs CMD, which must exit with STATUS.
# Its stdout and stderr are left in $OUT and $ERR.
expect_status() {
	local want=$1 got=0
	shift
	"$@" >"$T/.out" 2>"$T/.err" || got=$?
	OUT=$(cat "$T/.out")
	ERR=$(cat "$T/.err")
	[ "$got" = "$want" ] ||
		fail "$* exited $got, expected $want; stdout: $OUT; stderr: $ERR"
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every 50 ms until it
# succeeds; fails with DESCRIPTION after SECONDS.
wait_for() {
	local what=$1 secs=$2 deadline
	shift 2
	deadline=$(($(date +%s%N) + secs * 1000000000))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
		sleep 0.05
	done
}

# loket_in DIR ARGS...: runs loket with DIR's configuration.
loket_in() {
	local dir=$1
	shift
	"$LOKET" -c "$dir/loket.conf" "$@"
}

# init_node DIR NAME [ENDPOINT]: a new node; the [member] section that
# `loket init` printed for its peers lands in DIR.member.
init_node() {
	local dir=$1 name=$2
	if [ -n "${3:-}" ]; then
		"$LOKET" init "$dir" --name "$name" --listen "$3" >"$dir.member"
	else
		"$LOKET" init "$dir" --name "$name" >"$dir.member"
	fi
}

# add_member DIR MEMBER_FILE [nodial]: pastes a [member] section as `loket
# init` printed it (MEMBER_FILE) into DIR's configuration; with nodial,
# without its endpoint, so that DIR waits to be dialled.
add_member() {
	local dir=$1 file=$2
	{
		echo
		if [ "${3:-}" = nodial ]; then grep -v '^endpoint = ' "$file"; else cat "$file"; fi
	} >>"$dir/loket.conf"
}

# answers DIR: succeeds once loketd in DIR answers `loket status`, healthy
# or not (exit 3: it answered, and says why it is unhealthy).
answers() {
	local rc=0
	loket_in "$1" status >/dev/null 2>&1 || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ]
}

# sanitized BIN: whether BIN is built with AddressSanitizer (its memory and
# time figures are not those of use). Not `ldd | grep -q`: grep leaving early
# kills ldd with SIGPIPE, and under pipefail that reads as "no".
sanitized() {
	local libs
	libs=$(ldd "$1" 2>/dev/null) || true
	[[ "$libs" == *libasan* ]]
}

# member_field MEMBER_FILE KEY: the value of KEY (key or endpoint) in a [member] section.
member_field() {
	sed -n "s/^$2 = //p" "$1"
}

# start_node DIR: runs loketd in the background (log in DIR/loketd.log) and
# waits until it answers `loket status`.
start_node() {
	local dir=$1 pid
	[ -x "$LOKETD" ] || fail "no loketd at $LOKETD"
	"$LOKETD" -c "$dir/loket.conf" 2>>"$dir/loketd.log" &
	pid=$!
	NODE_PID[$dir]=$pid
	local deadline=$(($(date +%s%N) + 10 * 1000000000))
	until answers "$dir"; do
		kill -0 "$pid" 2>/dev/null || {
			unset "NODE_PID[$dir]"
			wait "$pid" 2>/dev/null || true
			fail "loketd in $dir exited while starting"
		}
		[ "$(date +%s%N)" -lt "$deadline" ] || fail "loketd in $dir did not answer within 10s"
		sleep 0.05
	done
}

# stop_node DIR: SIGTERM, then waits for a clean exit (status 0).
stop_node() {
	local dir=$1 pid status=0
	pid=${NODE_PID[$dir]:-}
	[ -n "$pid" ] || fail "stop_node: no loketd running in $dir"
	kill -TERM "$pid"
	wait "$pid" || status=$?
	unset "NODE_PID[$dir]"
	[ "$status" = 0 ] || fail "loketd in $dir exited with status $status on SIGTERM"
}

# kill9_node DIR: SIGKILL, as a crash would.
kill9_node() {
	local dir=$1 pid
	pid=${NODE_PID[$dir]:-}
	[ -n "$pid" ] || fail "kill9_node: no loketd running in $dir"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	unset "NODE_PID[$dir]"
}
