# The sd_notify protocol as loketd speaks it under systemd (Type=notify,
# WatchdogSec=, NotifyAccess=main), against a listener in systemd's place,
# since PID 1 here is not systemd: READY=1 once serving, WATCHDOG=1 every
# half WATCHDOG_USEC from the loop, RELOADING=1 then READY=1 around a reload
# by SIGHUP or by `loket reload` with the outcome in STATUS=, and STOPPING=1
# at stop. Every message must come from loketd's own pid.
. "$(dirname "$0")/lib.sh"

LISTENER="$LOKET_BIN/tests/notify_listener"
[ -x "$LISTENER" ] || fail "no notify_listener at $LISTENER"
SOCK="$T/notify.sock"
MSGS="$T/notify.log"
"$LISTENER" "$SOCK" "$MSGS" &
NODE_PID[listener]=$! # so that cleanup stops it too
wait_for "the listener's socket" 5 test -S "$SOCK"

# count PATTERN: lines the daemon sent that match PATTERN (grep -E).
count() { grep -cE "$1" "$MSGS" || true; }
# pings_at_least N: succeeds once N WATCHDOG=1 have come.
pings_at_least() { [ "$(count WATCHDOG=1)" -ge "$1" ]; }
# after N PATTERN: succeeds when a message matching PATTERN follows line N.
after() { tail -n +"$(($1 + 1))" "$MSGS" | grep -qE "$2"; }

init_node "$T/a" uni
# A watchdog of 300 ms: a ping at least every 150 ms.
NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=300000 start_node "$T/a"
pid=${NODE_PID[$T/a]}
wait_for "READY=1" 5 grep -q "READY=1" "$MSGS"
assert_contains "$(grep READY=1 "$MSGS")" "STATUS=node uni of federation default ready"
assert_eq 0 "$(grep -cv "^pid=$pid " "$MSGS")" "messages from another pid than loketd's"

# The pings go on while the daemon serves; five of them take ~0.6 s.
n=$(count "WATCHDOG=1")
wait_for "five more WATCHDOG=1" 5 pings_at_least $((n + 5))

# A reload by SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 and
# the outcome; the pings go on after it.
init_node "$T/b" lumc
add_member "$T/a" "$T/b.member"
mark=$(wc -l <"$MSGS")
kill -HUP "$pid"
wait_for "READY=1 after the SIGHUP" 5 after "$mark" "READY=1 STATUS=roster reloaded: 1 members"
reload=$(tail -n +"$((mark + 1))" "$MSGS" | grep -vE "^pid=$pid WATCHDOG=1 *$")
[[ "$reload" =~ ^pid=$pid\ RELOADING=1\ MONOTONIC_USEC=[0-9]+\ *$'\n'pid=$pid\ READY=1\ STATUS=roster\ reloaded ]] ||
	fail "expected RELOADING=1 then READY=1 for the SIGHUP, got: $reload"

# A reload that fails keeps the node on its roster: READY=1 says why, and
# `loket reload` (ExecReload= in the unit) exits 1 with the file and line.
cp "$T/a/loket.conf" "$T/a/good.conf"
echo "sync_interval = never" >>"$T/a/loket.conf"
mark=$(wc -l <"$MSGS")
kill -HUP "$pid"
wait_for "READY=1 after the failed SIGHUP" 5 after "$mark" "READY=1 STATUS=reload failed, running on the previous roster: .*loket.conf:[0-9]+:"
after "$mark" "RELOADING=1" || fail "no RELOADING=1 before the failed reload's READY=1"
# loket reads the file first, and says what is wrong without asking loketd.
expect_status 1 loket_in "$T/a" reload
assert_contains "$ERR" "$T/a/loket.conf:$(wc -l <"$T/a/loket.conf"):"
# A change loketd refuses: RELOADING=1, READY=1 with the reason, exit 1.
sed 's/^federation = default$/federation = other/' "$T/a/good.conf" >"$T/a/loket.conf"
mark=$(wc -l <"$MSGS")
expect_status 1 loket_in "$T/a" reload
assert_contains "$ERR" "may not change while loketd runs"
wait_for "READY=1 after the failed loket reload" 5 after "$mark" "READY=1 STATUS=reload failed, running on the previous roster: .*may not change"
after "$mark" "RELOADING=1" || fail "no RELOADING=1 for loket reload"
cp "$T/a/good.conf" "$T/a/loket.conf"
mark=$(wc -l <"$MSGS")
expect_status 0 loket_in "$T/a" reload
wait_for "READY=1 after loket reload" 5 after "$mark" "READY=1 STATUS=roster reloaded: 1 members"
assert_eq 0 "$(grep -cv "^pid=$pid " "$MSGS")" "messages from another pid than loketd's"

# SIGTERM: STOPPING=1, and a clean exit.
stop_node "$T/a"
grep -q "^pid=$pid STOPPING=1" "$MSGS" || fail "no STOPPING=1 at stop"

# Without WATCHDOG_USEC, or with a WATCHDOG_PID of another process, no pings.
: >"$MSGS"
NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=100000 WATCHDOG_PID=1 start_node "$T/a"
wait_for "READY=1" 5 grep -q "READY=1" "$MSGS"
loket_in "$T/a" status >/dev/null
stop_node "$T/a"
assert_eq 0 "$(count WATCHDOG=1)" "pings with WATCHDOG_PID naming another process"

pass
