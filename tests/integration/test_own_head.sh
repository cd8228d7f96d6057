#!/usr/bin/env bash
# Never fork yourself, and know why writes wait (README "When writes wait"):
# a new node alone and a clean restart with every peer down write at once;
# a forged hello about the node's own head opens or closes nothing; a wiped
# data directory beside the record of the own head (node.key.head) waits,
# says why, and opens once a peer has given the chain back; `loket resume
# --force` is refused while a peer claims more, and opens a node whose
# record is gone when no peer is up. The forger is tests/unit/test_sync in
# --peer mode with n3's key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
make_nodes 3
knows 1 2 dial
knows 1 3
knows 2 1
n1key=$(member_field "$T/n1.member" key)
n1ep=$(member_field "$T/n1.member" endpoint)

open_at() { status_json "$1" | jq -r .writes.open; }
is_open() { [ "$(open_at "$1")" = true ]; }
reason_at() { status_json "$1" | jq -r .writes.reason; }
# put_seq I ID: a put at node I; prints the seq of the changeset it made.
put_seq() { l "$1" put org "$2" --json '{"name":"own head"}' --output json | jq -r .seq; }
# n3's claim about n1's own chain has reached n1 (it then "lacks" about 100 of it).
claimed() { [ "$(l 1 peers --json | jq -r '.[] | select(.name == "n3") | .we_lack')" -ge 90 ]; }
forge() {
	"$PEER" --peer "$T/n3/node.key" "$n1key" "$n1ep" claimself >/dev/null &
	FORGER=$!
	wait_for "n3's claim about n1's own head at n1" 10 claimed
}

# A new node alone, right after `loket init`: its peer n2 is down, it writes at once.
start_node "$T/n1"
assert_eq true "$(open_at 1)" "writes at a new node alone"
assert_contains "$(l 1 status)" "writes: open" "human status"
assert_eq 1 "$(put_seq 1 a1)" "first write of a new node"
grep -q "own chain ends at seq 0 .* as $T/n1/node.key.head records; local writes are open" \
	"$T/n1/loketd.log" || fail "the start is not logged"

# A clean restart, and one after a crash, with every peer down: at once.
stop_node "$T/n1"
start_node "$T/n1"
assert_eq true "$(open_at 1)" "writes after a clean restart"
assert_eq 2 "$(put_seq 1 a2)" "write after a clean restart"
kill9_node "$T/n1"
start_node "$T/n1"
assert_eq 3 "$(put_seq 1 a3)" "write after a crash"

# A forged hello: n3 claims n1's own chain up to seq 100 with a random hash.
# Writes stay open, and open at once after a restart with the forger there.
forge
assert_eq true "$(open_at 1)" "writes after a forged hello"
assert_eq 4 "$(put_seq 1 a4)" "write after a forged hello"
wait "$FORGER"
stop_node "$T/n1"
start_node "$T/n1"
forge
assert_eq true "$(open_at 1)" "writes after a restart and a forged hello"
assert_eq 5 "$(put_seq 1 a5)" "write after a restart and a forged hello"
wait "$FORGER"

# A wiped data directory, the record kept: writes wait and say why, until
# n2 has given n1 its chain back; the next write continues it.
start_node "$T/n2"
wait_for "n1 and n2 converged" 20 converged 1 2
h5=$(status_json 1 | jq -r .heads.n1.hash)
stop_node "$T/n2"
stop_node "$T/n1"
rm -rf "$T/n1/data"
mkdir "$T/n1/data"
start_node "$T/n1"
assert_eq false "$(open_at 1)" "writes at a wiped node"
reason=$(reason_at 1)
assert_contains "$reason" "its data directory was wiped" "the case"
assert_contains "$reason" "$T/n1/node.key.head records that it signed up to seq 5 (hash ${h5:0:12}" \
	"the recorded head"
assert_contains "$reason" "own changesets 1..5 back from a peer" "what it waits for"
assert_eq "0 5" "$(status_json 1 | jq -r '"\(.writes.own_head) \(.writes.recorded_head)"')" \
	"heads in status"
assert_contains "$(l 1 status)" "writes: refused: local writes wait" "human status"
expect_status 1 loket_in "$T/n1" put org no --json '{"name":"refused"}'
assert_contains "$ERR" "own changesets 1..5 back from a peer" "a refused put"
start_node "$T/n2"
wait_for "n1 has its own chain back" 20 is_open 1
assert_eq 5 "$(status_json 1 | jq -r .heads.n1.seq)" "n1's own head after catching up"
grep -q "has its own chain back up to seq 5" "$T/n1/loketd.log" || fail "the opening is not logged"
assert_eq 6 "$(put_seq 1 a6)" "the next write after the wipe"
wait_for "n1 and n2 converged after the wipe" 20 converged 1 2
assert_eq "[]" "$(status_json 2 | jq -c .forks)" "forks at n2"

# The record gone beside a store that had one: refused until the operator
# resumes; resume needs --force and is refused while a peer claims more.
stop_node "$T/n2"
stop_node "$T/n1"
rm "$T/n1/node.key.head"
start_node "$T/n1"
assert_contains "$(reason_at 1)" "is missing beside a store that holds changesets" "missing record"
expect_status 1 loket_in "$T/n1" resume
assert_contains "$ERR" "its next write forks its chain, and every node freezes its chain" \
	"resume without --force"
forge
expect_status 1 loket_in "$T/n1" resume --force
assert_contains "$ERR" "n3 says it holds this node's chain up to seq 100, the store has 6" \
	"resume while a peer claims more"
assert_eq false "$(open_at 1)" "writes after a refused resume"
wait "$FORGER"
stop_node "$T/n1"
start_node "$T/n1"
expect_status 0 loket_in "$T/n1" resume --force
assert_contains "$OUT" "next changeset is seq 7" "resume's reply"
grep -q "resume --force.*own head seq 6" "$T/n1/loketd.log" || fail "resume is not logged"
assert_eq true "$(open_at 1)" "writes after resume"
[ -s "$T/n1/node.key.head" ] || fail "resume did not write the record"
assert_eq 7 "$(put_seq 1 a7)" "the write after resume"
expect_status 1 loket_in "$T/n1" resume --force
assert_contains "$ERR" "nothing to resume" "resume while writes are open"
stop_node "$T/n1"
start_node "$T/n1"
assert_eq true "$(open_at 1)" "writes after resume and a restart"
stop_node "$T/n1"
pass
