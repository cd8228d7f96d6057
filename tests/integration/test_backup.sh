#!/usr/bin/env bash
# loket backup and loket restore. A backup taken while puts are landing is
# one file that `loket verify --db` passes and that holds every put
# acknowledged before it began; an existing file is never replaced; a
# relative path is the client's. Restore refuses while loketd runs, naming
# its PID; once loketd is stopped it puts the backup in place, removes the
# old store's log, shared memory and search index, and loketd starts on it
# with the backup's heads.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || fail "jq is needed"

init_node "$T/n" uni
data="$T/n/data"
start_node "$T/n"
l() { loket_in "$T/n" "$@"; }

# Writes landing while the backup is made: an import in batches, and a
# writer that records the seq of each put once loketd acknowledged it.
awk 'BEGIN { for (i = 1; i <= 60000; i++)
	printf "{\"coll\":\"project\",\"id\":\"p%d\",\"fields\":{\"name\":\"Project %d\"}}\n", i, i }' \
	>"$T/projects.jsonl"
acked="$T/acked"
: >"$acked"
(
	for i in $(seq 1 100000); do
		out=$(l put expert "e$i" --json "{\"name\":\"Expert $i\"}" --output json) || break
		jq -r .seq <<<"$out" >>"$acked"
	done
) &
writer=$!
acked_at_least() { [ "$(wc -l <"$acked")" -ge "$1" ]; }
wait_for "10 acknowledged puts" 60 acked_at_least 10
l import "$T/projects.jsonl" >"$T/import.out" 2>&1 &
importer=$!
wait_for "30 acknowledged puts" 60 acked_at_least 30
before=$(tail -n 1 "$acked")
expect_status 0 l backup "$T/live.db"
assert_contains "$OUT" "$T/live.db: "
kill "$writer"
wait "$writer" 2>/dev/null || true
wait "$importer" || fail "the import beside the backup failed: $(cat "$T/import.out")"

[ -f "$T/live.db" ] || fail "no backup file"
for f in "$T/live.db-wal" "$T/live.db-shm" "$T/live.db.tmp"; do
	[ ! -e "$f" ] || fail "the backup left $f"
done
expect_status 0 l verify --db "$T/live.db"
assert_contains "$OUT" ": ok" "verify of the backup"
expect_status 0 l verify --db "$T/live.db" --json
held=$(jq -r .changesets <<<"$OUT")
[ "$held" -ge "$before" ] ||
	fail "the backup holds $held changesets; seq $before was acknowledged before it began"
[ ! -e "$T/live.db-wal" ] || fail "verify made a log beside the backup"

# Never over an existing file; a relative path is the client's, not loketd's.
expect_status 1 l backup "$T/live.db"
assert_contains "$ERR" "$T/live.db exists"
expect_status 0 bash -c "cd '$T' && '$LOKET' -c '$T/n/loket.conf' backup rel.db"
[ -f "$T/rel.db" ] || fail "backup rel.db did not write $T/rel.db"
expect_status 0 l backup "$T/json.db" --json
assert_eq "$T/json.db" "$(jq -r .file <<<"$OUT")" "backup --json file"

# A backup at a quiet moment, then more writes.
expect_status 0 l backup "$T/quiet.db"
quiet_heads=$(l status --json | jq -c .heads)
for i in 1 2 3; do
	expect_status 0 l put expert "later$i" --json '{"name":"after the backup"}'
done
[ "$(l status --json | jq -c .heads)" != "$quiet_heads" ] || fail "the heads did not move"

# Restore refuses while loketd runs, and changes nothing.
pid=${NODE_PID[$T/n]}
expect_status 1 l restore "$T/quiet.db"
assert_contains "$ERR" "pid $pid"
assert_contains "$ERR" "$data"
expect_status 0 l get expert later3

# A stop that leaves the log, the shared memory and the index behind.
kill9_node "$T/n"
for f in store.db-wal store.db-shm store.db-index; do
	[ -e "$data/$f" ] || fail "no $f after kill -9 (the test needs one)"
done
expect_status 0 l restore "$T/quiet.db"
assert_contains "$OUT" "restored $T/quiet.db as $data/store.db"
assert_contains "$OUT" "removed store.db-wal, store.db-shm, store.db-index"
for f in store.db-wal store.db-shm store.db-index store.db.restore; do
	[ ! -e "$data/$f" ] || fail "restore left $data/$f"
done
start_node "$T/n"
assert_eq "$quiet_heads" "$(l status --json | jq -c .heads)" "heads after the restore"
expect_status 1 l get expert later3
stop_node "$T/n"
expect_status 0 l verify
pass
