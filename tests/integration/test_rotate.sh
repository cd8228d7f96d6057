#!/usr/bin/env bash
# Key rotation (proto/FORMAT.md section 14), live, on three nodes (n1 and
# n2 dial each other, both dial n3, which dials no one): n1 rotates its key with `loket
# rotate-key`; the old key is kept, the origin stays, n1's entities stay
# writable, the peers follow with no change to their configuration and
# admit n1's new CURVE key (the listener and dealers of n1 switch to it),
# `loket verify` passes on every node, a restart signs with the new key,
# a rebuild from the log gives the same state, the old key put back in
# place of the new one signs nothing, a stop
# between the record and the key file's rename is finished at the next
# start, a node.key.new that no record names is left unused, and a wiped
# store takes its chain back across the rotation and signs on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

N=3
make_nodes $N
knows 1 2 dial
knows 1 3 dial
knows 2 1 dial
knows 2 3 dial
knows 3 1
knows 3 2
for i in $(seq 1 $N); do start_node "$T/n$i"; done
for i in $(seq 1 $N); do wait_for "writes open at n$i" 20 writes_open "$i"; done

origin=$(l 1 pubkey)
old_key=$(cat "$T/n1/node.key")
l 1 put expert jdevries --json '{"name":"Jan de Vries"}' >/dev/null
wait_for "n1's expert at n3" 10 has 3 expert jdevries n1

# The rotation: a record in n1's own chain, the old key kept beside the new.
out=$(l 1 rotate-key --json) || fail "rotate-key failed"
seq=$(jq -r .seq <<<"$out")
[ "$(jq -r .origin <<<"$out")" = "$origin" ] || fail "the origin changed: $out"
new=$(jq -r .key <<<"$out")
[ "$new" != "$origin" ] || fail "the new key is the old one"
[ -f "$T/n1/node.key.old-$seq" ] || fail "no node.key.old-$seq"
assert_eq "$old_key" "$(cat "$T/n1/node.key.old-$seq")" "the old key kept"
[ "$(cat "$T/n1/node.key")" != "$old_key" ] || fail "node.key still holds the old key"
assert_eq "600" "$(stat -c %a "$T/n1/node.key")" "mode of the new node.key"
assert_eq "600" "$(stat -c %a "$T/n1/node.key.old-$seq")" "mode of the old key"
assert_eq "$origin" "$(cat "$T/n1/node.key.origin")" "node.key.origin"
assert_eq "$origin" "$(l 1 pubkey)" "pubkey prints the origin"
assert_eq "$origin" "$(status_json 1 | jq -r .key)" "status key (the origin)"
assert_eq "$new" "$(status_json 1 | jq -r .signing_key)" "status signing_key"
[ ! -e "$T/n1/node.key.new" ] || fail "node.key.new left behind"

# The origin's entities stay writable, under the same owner.
l 1 put expert jdevries --json '{"name":"Jan de Vries","title":"prof."}' >/dev/null ||
	fail "n1's own entity is not writable after the rotation"
l 1 put expert after1 --json '{"name":"Na de rotatie"}' >/dev/null
title() { l "$1" get expert jdevries --owner n1 --json | jq -r .fields.title; }
for i in 2 3; do
	wait_for "n1's update at n$i" 15 test "$(title "$i")" = "prof."
done
wait_for "three nodes converged" 15 converged 1 2 3

# n1's CURVE identity follows (its listener and dealers switched to the new
# key once n2 and n3 had the record); the peers' ZAP admits the new key.
wait_for "n1's CURVE switch" 15 grep -q "the CURVE identity follows the key rotated at seq $seq" \
	"$T/n1/loketd.log"
session() { [ "$(l "$1" peers --json | jq -r --arg m "$2" '.[] | select(.name == $m) | .session')" = "$3" ]; }
# n2 dialled n1 again, now with n1's new server key ...
dialled_n1() { [ "$(grep -c "dialled n1 at" "$T/n2/loketd.log")" -ge 2 ]; }
wait_for "n2 dialling n1's new key" 15 dialled_n1
# ... and n1's dealers came back with the new client key, admitted by ZAP.
wait_for "both sessions of n1 and n2" 15 session 1 n2 both
wait_for "n1's session to n3" 15 session 1 n3 dialled
n1_dialled_n3() { [ "$(grep -c "dialled n3 at" "$T/n1/loketd.log")" -ge 2 ]; }
wait_for "n1 dialling n3 again with its new key" 15 n1_dialled_n3
# With n2 down, n1's write reaches n3 only over n1's own dealer, which
# dials with the new key since the switch: n3's ZAP admitted it.
stop_node "$T/n2"
l 1 put expert after2 --json '{"name":"Na de CURVE-wissel"}' >/dev/null
wait_for "n1's write after the switch at n3, n2 down" 15 has 3 expert after2 n1
# n2 dials n1 afresh after a restart, with n1's new key as the server key
# (from its store's key history), and n1 admits it.
start_node "$T/n2"
wait_for "n1's write after the switch at n2" 15 has 2 expert after2 n1
wait_for "n2's sessions with n1 again" 15 session 2 n1 both
l 1 put expert after3 --json '{"name":"Na de herstart van n2"}' >/dev/null
wait_for "n1's write at n2 after n2's restart" 15 has 2 expert after3 n1
# n1's log goes on being witnessed: its checkpoint of its head, signed with
# the new key, is cosigned by n2 and n3 (with the new key unknown to a
# witness's check, the checkpoint would be refused as not signed by n1).
head1=$(status_json 1 | jq -r .heads.n1.seq)
n1_ckpt() {
	local c
	c=$(l "$1" checkpoints --json | jq -c '.[] | select(.origin == "n1")')
	[ "$(jq -r .size <<<"$c")" = "$head1" ] && [ "$(jq -c '.cosigners | sort' <<<"$c")" = '["n2","n3"]' ]
}
for i in 2 3; do
	wait_for "n1's checkpoint at seq $head1 at n$i, cosigned by n2 and n3" 20 n1_ckpt "$i"
done

for i in $(seq 1 $N); do
	l "$i" verify >"$T/verify$i.out" 2>&1 || fail "verify failed at n$i: $(cat "$T/verify$i.out")"
done
# The rotation records write no entity: a rebuild from the log gives the same state.
digest=$(status_json 2 | jq -r .digest)
l 2 rebuild >/dev/null
assert_eq "$digest" "$(status_json 2 | jq -r .digest)" "n2's digest after a rebuild"

# A restart of n1 signs with the new key, and peers take it.
stop_node "$T/n1"
start_node "$T/n1"
wait_for "writes open at n1 after the restart" 10 writes_open 1
l 1 put expert after4 --json '{"name":"Na de herstart"}' >/dev/null
wait_for "n1's write after its restart at n3" 15 has 3 expert after4 n1
wait_for "converged after the restart" 15 converged 1 2 3
for i in $(seq 1 $N); do
	l "$i" verify >"$T/verify$i.out" 2>&1 || fail "verify failed at n$i: $(cat "$T/verify$i.out")"
done

# The old key back in place of the new one: n1 refuses to sign with it.
stop_node "$T/n1"
cp "$T/n1/node.key" "$T/n1/node.key.keep"
cp "$T/n1/node.key.old-$seq" "$T/n1/node.key"
start_node "$T/n1"
out=$(l 1 put expert stale --json '{"name":"met de oude sleutel"}' 2>&1) &&
	fail "n1 signed with the key its rotation retired: $out"
assert_contains "$out" "names key $new to sign seq" "the refusal"
stop_node "$T/n1"

# A stop between the record and the key file's rename (the old key still
# in node.key, the new one in node.key.new): the start finishes the
# install and signs with the new key.
mv "$T/n1/node.key.keep" "$T/n1/node.key.new"
start_node "$T/n1"
wait_for "writes open at n1 after the interrupted install" 10 writes_open 1
grep -q "finished the rotation of seq $seq" "$T/n1/loketd.log" || fail "no finished rotation in the log"
[ ! -e "$T/n1/node.key.new" ] || fail "node.key.new left after the install"
[ "$(cat "$T/n1/node.key")" != "$old_key" ] || fail "node.key holds the old key after the install"
l 1 put expert after5 --json '{"name":"Na de onderbroken rotatie"}' >/dev/null
wait_for "n1's write after the install at n3" 15 has 3 expert after5 n1
stop_node "$T/n1"
# A node.key.new that no record names (a stop before the record was
# signed) is not used: the node signs with node.key.
"$LOKET" init "$T/stray" --name stray >/dev/null
cp "$T/stray/node.key" "$T/n1/node.key.new"
start_node "$T/n1"
l 1 put expert after6 --json '{"name":"Met een losse node.key.new"}' >/dev/null ||
	fail "n1 does not sign beside a stray node.key.new"
wait_for "n1's write beside a stray node.key.new at n3" 15 has 3 expert after6 n1
stop_node "$T/n1"
l 1 verify >"$T/verify1.out" 2>&1 || fail "verify failed at n1: $(cat "$T/verify1.out")"

# A wiped store: n1 waits for its own chain, takes it back from its peers
# across the rotation (verified under each seq's key), and signs on with
# the new key.
rm "$T/n1/node.key.new"
mv "$T/n1/data" "$T/n1/data.wiped"
start_node "$T/n1"
wait_for "writes open at n1 with its chain back" 20 writes_open 1
l 1 get expert after6 --owner n1 >/dev/null || fail "n1's chain is not back"
wait_for "converged after n1's chain came back" 15 converged 1 2 3
stop_node "$T/n1"
l 1 verify >"$T/verify1.out" 2>&1 || fail "verify failed at n1: $(cat "$T/verify1.out")"

for i in 2 3; do stop_node "$T/n$i"; done
pass
