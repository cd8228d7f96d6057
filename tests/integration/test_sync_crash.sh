#!/usr/bin/env bash
# (g) kill -9 of a node in the middle of a bulk sync: after the restart
# nothing is lost, nothing duplicated, and all converge. The bulk is
# SYNC_CRASH_OPS ops (default 100,000), imported at n1 while n3 is killed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

OPS=${SYNC_CRASH_OPS:-100000}
make_nodes 3
mesh 3
for i in 1 2 3; do start_node "$T/n$i"; done
for i in 1 2 3; do wait_for "writes open at n$i" 20 writes_open "$i"; done

jsonl "$T/bulk.jsonl" "$OPS" b
l 1 import "$T/bulk.jsonl" >"$T/import.out" &
importer=$!
# n3 is killed once it holds part of the bulk, not all of it.
partial() {
	local n
	n=$(status_json 3 | jq -r '.counts.expert // 0')
	[ "$n" -gt 0 ] && [ "$n" -lt "$OPS" ]
}
wait_for "n3 has part of the bulk" 120 partial
kill9_node "$T/n3"
wait "$importer" || fail "the import at n1 failed: $(cat "$T/import.out")"
start_node "$T/n3"
wait_for "all converged after the kill" 180 converged 1 2 3
for i in 1 2 3; do
	assert_eq "$OPS" "$(status_json "$i" | jq -r .counts.expert)" "experts at n$i"
done
# Nothing duplicated: every changeset once, chains intact, digest recomputed.
stop_node "$T/n3"
loket_in "$T/n3" verify >"$T/verify.out" || { cat "$T/verify.out" >&2; fail "verify of n3 failed"; }
cs1=$(status_json 1 | jq -r .changesets)
cs3=$(sqlite3 "$T/n3/data/store.db" 'SELECT count(*) FROM changeset')
assert_eq "$cs1" "$cs3" "changesets at n3"
stop_node "$T/n1"
stop_node "$T/n2"
pass
