#!/usr/bin/env bash
# Never run on a damaged store. The case of issue 10: a backup copied over
# store.db by hand while the write-ahead log of the store it replaces
# (left by a kill -9) stays beside it. SQLite replays that log into the
# copy; loketd must refuse the result before "ready", say what it found
# and how to restore, and leave both files as they were. `loket restore`
# then puts the backup in place and loketd starts on it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || fail "jq is needed"

init_node "$T/n" uni
data="$T/n/data"
start_node "$T/n"
l() { loket_in "$T/n" "$@"; }
for i in 1 2 3 4 5; do
	expect_status 0 l put expert "e$i" --json "{\"name\":\"Expert $i\"}"
done
expect_status 0 l backup "$T/old.db"
old_heads=$(l status --json | jq -c .heads)

# The store grows well past the backup, and its log restarts after a
# checkpoint: from then on the log's pages build on pages the backup lacks.
awk 'BEGIN { for (i = 1; i <= 30000; i++)
	printf "{\"coll\":\"project\",\"id\":\"p%d\",\"fields\":{\"name\":\"Project %d, a name of some length\"}}\n", i, i }' \
	>"$T/projects.jsonl"
expect_status 0 l import "$T/projects.jsonl"
salt() { od -An -tx1 -j16 -N4 "$data/store.db-wal" | tr -d ' \n'; }
salt0=$(salt)
k=0
restarted() {
	k=$((k + 1))
	l put expert "w$k" --json '{"name":"after the import"}' >/dev/null
	[ "$(salt)" != "$salt0" ]
}
wait_for "the write-ahead log to restart after a checkpoint" 60 restarted
expect_status 0 l put expert last --json '{"name":"in the new log"}'
kill9_node "$T/n"
[ -s "$data/store.db-wal" ] || fail "no write-ahead log left after kill -9"

# The hand restore.
cp "$T/old.db" "$data/store.db"
cp "$data/store.db" "$T/store.before"
cp "$data/store.db-wal" "$T/wal.before"

"$LOKETD" -c "$T/n/loket.conf" 2>"$T/refused.log" &
pid=$!
deadline=$(($(date +%s%N) + 30 * 1000000000))
while kill -0 "$pid" 2>/dev/null; do
	if [ "$(date +%s%N)" -ge "$deadline" ]; then
		kill -KILL "$pid" 2>/dev/null || true
		fail "loketd still runs 30s after starting on the damaged store: $(cat "$T/refused.log")"
	fi
	sleep 0.05
done
status=0
wait "$pid" || status=$?
log=$(cat "$T/refused.log")
[ "$status" != 0 ] || fail "loketd exited 0 on the damaged store: $log"
assert_contains "$log" "store $data/store.db is damaged: " "the refusal"
assert_contains "$log" "PRAGMA integrity_check found: " "the refusal"
assert_contains "$log" "$data/store.db-wal was beside it" "the refusal"
assert_contains "$log" "loket restore FILE" "the refusal"
if grep -q -e " ready" -e "listening" "$T/refused.log"; then
	fail "loketd got as far as its sockets on the damaged store: $log"
fi
expect_status 1 l status
cmp -s "$data/store.db" "$T/store.before" || fail "the refused open changed store.db"
cmp -s "$data/store.db-wal" "$T/wal.before" || fail "the refused open changed store.db-wal"

# The way back.
expect_status 0 l restore "$T/old.db"
assert_contains "$OUT" "removed store.db-wal, store.db-shm"
[ ! -e "$data/store.db-wal" ] || fail "restore left the stale store.db-wal"
start_node "$T/n"
assert_eq "$old_heads" "$(l status --json | jq -c .heads)" "heads after the restore"
expect_status 0 l get expert e5
stop_node "$T/n"
expect_status 0 l verify
pass
