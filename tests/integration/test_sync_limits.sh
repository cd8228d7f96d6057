#!/usr/bin/env bash
# Bounded under attack, on the federation side. n1 runs with 256
# descriptors (ulimit -n) and holds 20,000 entities of its own; n2 is a
# member whose key the test peer holds.
#   - 1,500 TCP connections to n1's listen port, held open by a process
#     that never speaks: n1 shuts those beyond its budget, stays within its
#     descriptors, serves its control socket, and logs a few lines.
#   - the member opens 16 connections that ask for n1's whole chain every
#     10 ms and never read: one connection per member is kept, replies
#     queue only up to the send high-water mark, and n1's RSS stays within
#     64 MiB of what it was.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
command -v python3 >/dev/null || fail "python3 is needed"
make_nodes 2
start_node "$T/n1"
jsonl "$T/experts.jsonl" 20000 x
l 1 import "$T/experts.jsonl" >/dev/null
stop_node "$T/n1"
knows 1 2

( ulimit -n 256 && exec "$LOKETD" -c "$T/n1/loket.conf" ) 2>>"$T/n1/loketd.log" &
NODE_PID[$T/n1]=$!
pid=${NODE_PID[$T/n1]}
wait_for "n1 up with 256 descriptors" 10 l 1 status
n1key=$(member_field "$T/n1.member" key)
n1ep=$(member_field "$T/n1.member" endpoint)
port=${n1ep##*:}
fds() { ls "/proc/$pid/fd" | wc -l; }
alive() { kill -0 "$pid" 2>/dev/null || fail "loketd died"; }

# 1. A flood of silent connections.
cat >"$T/flood.py" <<'EOF'
import resource, socket, sys, time
port, n, hold, ready = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, n + 64))
socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
open(ready, "w").write(str(len(socks)))
time.sleep(hold)
EOF
log_before=$(wc -l <"$T/n1/loketd.log")
python3 "$T/flood.py" "$port" 1500 8 "$T/flood.ready" &
FLOOD=$!
wait_for "the flood's connections" 10 test -s "$T/flood.ready"
for k in 1 2 3 4 5; do
	alive
	l 1 status >/dev/null || fail "n1's control socket does not answer during the flood ($k)"
	[ "$(fds)" -le 256 ] || fail "n1 holds $(fds) descriptors"
done
shut() { grep -q "connections to the listen port\|shut a connection to the listen port" "$T/n1/loketd.log"; }
wait_for "the shut connections in the log" 10 shut
wait "$FLOOD" || true
alive
l 1 status >/dev/null || fail "n1 does not answer after the flood"
grown=$(($(wc -l <"$T/n1/loketd.log") - log_before))
[ "$grown" -le 10 ] || fail "the flood made $grown log lines"

# 2. A member that asks and never reads, on 16 connections.
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
base=$(rss)
"$PEER" --peer "$T/n2/node.key" "$n1key" "$n1ep" hog 16 8 >/dev/null &
HOG=$!
peak=$base
while kill -0 "$HOG" 2>/dev/null; do
	r=$(rss)
	[ "$r" -le "$peak" ] || peak=$r
	alive
	sleep 0.2 # sampling RSS while the hog runs, not waiting for a condition
done
wait "$HOG" || true
echo "n1 RSS: $base KiB before, $peak KiB at most while hogged"
# AddressSanitizer keeps freed memory in quarantine: RSS says nothing there.
if sanitized "$LOKETD"; then
	echo "RSS not bounded under AddressSanitizer"
else
	[ $((peak - base)) -le $((64 * 1024)) ] || fail "n1's RSS grew by $(((peak - base) / 1024)) MiB"
fi
l 1 status >/dev/null || fail "n1 does not answer after the hog"
pass
