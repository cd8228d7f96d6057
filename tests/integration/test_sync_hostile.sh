#!/usr/bin/env bash
# (f) A test peer holding a member's key (n3) sends a changeset with a bad
# signature, one with a broken chain link, one of a non-member origin,
# garbage, and a hello of another protocol version: each is refused and
# counted, nothing of it is stored, and sync between the honest nodes n1
# and n2 goes on. Then a fork: a second, validly signed seq 1 of n3 makes a
# fork proof, reported by status, the log and verify, and n3 is frozen
# before seq 1. A protocol error shuts n3 out at ZAP until its ban ends. A
# frame over the size limit is counted in peers (oversize) and bans too.
# The peer is tests/unit/test_sync in --peer mode.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
make_nodes 3
knows 1 2 dial
knows 1 3
knows 2 1
knows 2 3
for i in 1 2; do start_node "$T/n$i"; done
for i in 1 2; do wait_for "writes open at n$i" 20 writes_open "$i"; done
n1key=$(member_field "$T/n1.member" key)
n1ep=$(member_field "$T/n1.member" endpoint)
evil() { "$PEER" --peer "$T/n3/node.key" "$n1key" "$n1ep" "$1"; }
fork_recorded() {
	[ "$(status_json 1 | jq -r '[.forks[] | select(.origin == "n3" and .seq == 1)] | length')" = 1 ]
}
errors() { l 1 peers --json | jq -r '.[] | select(.name == "n3") | .errors'; }

banned_ms() { l 1 peers --json | jq -r '.[] | select(.name == "n3") | .banned_ms'; }
unbanned() { [ "$(banned_ms)" = 0 ]; }

before=$(errors)
out=$(evil badsig)
assert_contains "$out" "bad signature" "reply to a bad signature"
[ "$(errors)" -gt "$before" ] || fail "bad signature not counted"
assert_eq null "$(status_json 1 | jq -r '.heads.n3')" "n3 head after a bad signature"

# A protocol error shuts the member out at the handshake for a while.
[ "$(banned_ms)" -gt 0 ] || fail "n3 is not banned after a bad signature"
assert_contains "$(l 1 peers)" "refused for" "the ban in peers"
out=$(evil garbage)
assert_contains "$out" "no connection" "n3 connecting while banned"
grep -q "member n3 is banned" "$T/n1/loketd.log" || fail "the refused banned member is not logged"
wait_for "n3's ban to end" 20 unbanned

# A seq 2 validly signed but linked to another seq 1 is fork evidence: n1
# asks for that seq 1 (the peer never sends it) and keeps its own.
evil badprev >/dev/null
assert_eq 1 "$(status_json 1 | jq -r '.heads.n3.seq')" "n3 head after a broken link"
assert_contains "$(l 1 peers --json | jq -r '.[] | select(.name == "n3") | .last_error')" \
	"links to another seq 1" "n3's broken link in peers"

before=$(errors)
evil nonmember >/dev/null
more_errors() { [ "$(errors)" -gt "$before" ]; }
wait_for "non-member origin counted" 10 more_errors
grep -q "n3: refused a changeset of .*, which is not a roster member" "$T/n1/loketd.log" ||
	fail "the non-member changeset is not in n1's log"

out=$(evil garbage)
assert_contains "$out" "undecodable" "reply to garbage"
wait_for "n3's second ban to end" 30 unbanned
out=$(evil oldproto)
assert_contains "$out" "incompatible sync protocol" "reply to protocol 2"
grep -q "incompatible sync protocol" "$T/n1/loketd.log" || fail "incompatible peer not logged"

# The honest nodes go on, and n1 still verifies.
l 2 put expert after --json '{"name":"after the attacks"}' >/dev/null
wait_for "n2's write at n1" 20 has 1 expert after n2
wait_for "n1 and n2 converged" 20 converged 1 2
has 1 expert evil2 n3 && fail "n1 took n3's changeset with the broken link"
stop_node "$T/n1"
loket_in "$T/n1" verify >"$T/verify.out" || { cat "$T/verify.out" >&2; fail "n1 does not verify"; }

# The fork.
start_node "$T/n1"
evil fork >/dev/null
wait_for "the fork of n3 seq 1 in n1's status" 20 fork_recorded
# Frozen before seq 1: nothing of n3 is held any more.
assert_eq null "$(status_json 1 | jq -r '.heads.n3')" "n3 head after the fork"
has 1 expert evil1 n3 && fail "n1 still holds n3's forked seq 1"
assert_contains "$(l 1 status)" "forks:" "human status"
grep -qi "fork" "$T/n1/loketd.log" || fail "the fork is not in n1's log"

# A frame over the limit that libzmq still passes on is counted, and bans.
evil oversize >/dev/null
oversize() { [ "$(l 1 peers --json | jq -r '.[] | select(.name == "n3") | .oversize')" = 1 ]; }
wait_for "n3's oversize frame counted" 10 oversize
[ "$(banned_ms)" -gt 0 ] || fail "n3 is not banned after an oversize frame"
grep -q "a frame of 209[0-9]* bytes, over the limit of 2097152" "$T/n1/loketd.log" ||
	fail "the oversize frame is not in n1's log"
stop_node "$T/n1"
expect_status 1 "$LOKET" -c "$T/n1/loket.conf" verify
assert_contains "$OUT$ERR" "n3 seq 1" "verify names the forked changeset"
stop_node "$T/n2"
pass
