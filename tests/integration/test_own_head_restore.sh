#!/usr/bin/env bash
# The restore of issue 10, with a stale first peer: n1 writes seq 1 and is
# backed up (sqlite3 .backup, as an operator would); n3 goes down; n1
# writes seq 2-4, which reach n2 only; n1 and n2 stop; n1's backup is put
# in place. n3 (which never saw seq 2-4) and n1 start: n1 takes n3's news
# but its writes stay refused, since its record (node.key.head) says it
# signed up to seq 4. Once n2 is up, n1 takes seq 2-4 back, opens, and its
# next write is seq 5: no fork anywhere, and all three converge.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is needed (scripts/deps.sh installs it)"
make_nodes 3
mesh 3
for i in 1 2 3; do start_node "$T/n$i"; done

open_at() { status_json "$1" | jq -r .writes.open; }
is_open() { [ "$(open_at "$1")" = true ]; }
put_seq() { l "$1" put org "$2" --json '{"name":"restore"}' --output json | jq -r .seq; }
own_head_at() { status_json "$1" | jq -r .heads.n1.seq; }

assert_eq 1 "$(put_seq 1 s1)" "n1's first write"
for i in 2 3; do wait_for "seq 1 at n$i" 20 has "$i" org s1 n1; done
sqlite3 "$T/n1/data/store.db" ".backup '$T/n1-backup.db'"
stop_node "$T/n3"
for s in 2 3 4; do assert_eq "$s" "$(put_seq 1 "s$s")" "n1's write $s"; done
wait_for "seq 4 at n2" 20 has 2 org s4 n1
stop_node "$T/n1"
stop_node "$T/n2"

# The restore: the backup over store.db, the stale WAL, shared memory and index gone.
cp "$T/n1-backup.db" "$T/n1/data/store.db"
rm -f "$T/n1/data/store.db-wal" "$T/n1/data/store.db-shm" "$T/n1/data/store.db-index"*

start_node "$T/n3"
start_node "$T/n1"
assert_eq false "$(open_at 1)" "writes at the restored n1"
l 3 put org while-away --json '{"name":"written at n3 while n1 was restored"}' >/dev/null
# n1 has heard n3's hello and taken its news: n3's word changes nothing.
wait_for "n3's write at n1" 20 has 1 org while-away n3
assert_eq false "$(open_at 1)" "writes at n1 with only the stale n3 up"
assert_eq 1 "$(own_head_at 1)" "n1's own head with only n3 up"
reason=$(status_json 1 | jq -r .writes.reason)
assert_contains "$reason" "restored from an older backup" "the case"
assert_contains "$reason" "records that it signed up to seq 4" "the recorded head"
expect_status 1 loket_in "$T/n1" put org refused --json '{"name":"must not be signed"}'
assert_contains "$ERR" "own changesets 2..4 back from a peer" "a refused put"

start_node "$T/n2"
wait_for "n1 has seq 2-4 back" 30 is_open 1
assert_eq 4 "$(own_head_at 1)" "n1's own head once n2 is up"
assert_eq 5 "$(put_seq 1 s5)" "n1's first write after the restore"
wait_for "all three converged" 30 converged 1 2 3
for i in 1 2 3; do
	assert_eq "[]" "$(status_json "$i" | jq -c .forks)" "forks at n$i"
done
for i in 1 2 3; do stop_node "$T/n$i"; done
for i in 1 2 3; do
	loket_in "$T/n$i" verify >"$T/verify.out" || { cat "$T/verify.out" >&2; fail "n$i does not verify"; }
done
pass
