#!/usr/bin/env bash
# (c) A node stopped while the others write 10,000 ops catches up once it
# is back; (d) a node whose data directory was wiped takes everything back,
# its own chain first, and refuses local writes until it has.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 3
mesh 3
for i in 1 2 3; do start_node "$T/n$i"; done
for i in 1 2 3; do wait_for "writes open at n$i" 20 writes_open "$i"; done
l 3 put expert own --json '{"name":"written at n3 before it stopped"}' >/dev/null
wait_for "n3's write at n1" 20 has 1 expert own n3

# (c) n3 is down while n1 and n2 write 10,000 ops.
stop_node "$T/n3"
jsonl "$T/a.jsonl" 6000 a
jsonl "$T/b.jsonl" 4000 b
l 1 import "$T/a.jsonl" >/dev/null
l 2 import "$T/b.jsonl" >/dev/null
start_node "$T/n3"
wait_for "n3 caught up" 60 converged 1 2 3
assert_eq 10001 "$(status_json 3 | jq -r .counts.expert)" "experts at n3 after catching up"

# (d) n3 loses its data directory: it comes back empty, refuses to sign
# until a peer has given it back its own chain, then holds everything.
stop_node "$T/n3"
rm -rf "$T/n3/data"
mkdir "$T/n3/data"
start_node "$T/n3"
wait_for "n3 re-synced after the wipe" 60 converged 1 2 3
has 3 expert own n3 || fail "n3's own changeset did not come back"
wait_for "writes open at n3" 20 writes_open 3
l 3 put expert own --json '{"name":"written after the wipe"}' >/dev/null
wait_for "all converged after n3's new write" 20 converged 1 2 3
assert_eq "[]" "$(status_json 1 | jq -c .forks)" "no fork after the wipe"
seq3=$(status_json 1 | jq -r .heads.n3.seq)
[ "$seq3" -ge 3 ] || fail "n3's chain did not continue after the wipe (seq $seq3)"
for i in 1 2 3; do stop_node "$T/n$i"; done
pass
