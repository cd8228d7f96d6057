#!/usr/bin/env bash
# Key rotation and revocation against a test peer (tests/unit/test_sync in
# --peer mode, the real protocol with a real member key) pushing chains to
# n1 (proto/FORMAT.md section 14):
# - a member's chain that rotates its key is taken, with no change to n1's
#   configuration, and `loket verify` passes;
# - a rotation record signed by a key that is not current there is refused
#   (a bad signature), and nothing after it is taken;
# - a roster revocation (revoke = KEY after SEQ): a changeset signed with
#   the revoked key above SEQ is refused, relayed by another member, with a
#   sentence naming origin, seq and key, and the revoked key may no longer
#   connect;
# - `loket verify` follows the key history and the revocations: an old
#   key revoked after the rotation record it signed passes, revoked before
#   it, verify reports each changeset it signed beyond, by origin, seq and
#   key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
# n1 is the node under test; n2, n3 and n4 are members whose keys the
# peer holds (n2 rotates, n3 forges, n4 is revoked); n5 and n6 only lend
# their keys as the keys rotated to.
make_nodes 6
for i in 2 3 4; do knows 1 "$i"; done
key_of() { member_field "$T/n$1.member" key; }
# revoke I KEY SEQ: in n1's roster, member nI revokes KEY after SEQ (one line, replaced).
revoke() {
	awk -v k="key = $(key_of "$1")" -v r="revoke = $2 after $3" -v rk="revoke = $2 after " '
		index($0, rk) == 1 { next }
		{ print } $0 == k { print r }' "$T/n1/loket.conf" >"$T/n1/loket.conf.new"
	mv "$T/n1/loket.conf.new" "$T/n1/loket.conf"
}
revoke 4 "$(key_of 4)" 2
grep -qF "revoke = $(key_of 4) after 2" "$T/n1/loket.conf" || fail "no revoke line for n4"
start_node "$T/n1"
n1key=$(key_of 1)
n1ep=$(member_field "$T/n1.member" endpoint)
peer() { "$PEER" --peer "$T/n$1/node.key" "$n1key" "$n1ep" "${@:2}"; }
head_of() { status_json 1 | jq -r --arg o "$1" '.heads[$o].seq // 0'; }

# n2's chain rotates at seq 3 to n6's key; seqs 4 and 5 are signed by it.
peer 2 rot a 3 5 "$T/n5/node.key" >/dev/null
wait_for "n2's rotated chain at n1" 10 test "$(head_of n2)" = 5
grep -q "origin $(key_of 2) rotated its key at seq 3: from seq 4 on it signs with $(key_of 5)" \
	"$T/n1/loketd.log" || fail "n2's rotation is not in n1's log"

# n3's record at seq 2 is signed by n6's key, which is not n3's key there.
out=$(peer 3 forgerot a 2 4 "$T/n6/node.key")
assert_contains "$out" "seq 2 refused: bad signature: it does not verify under $(key_of 3)" \
	"the reply to a forged rotation record"
assert_eq 1 "$(head_of n3)" "n3's head after a forged rotation record"

# n4's key is revoked after seq 2: n2 relays n4's chain, seqs 3 and 4 are refused.
peer 2 relay b 1 4 "$T/n4/node.key" >/dev/null
wait_for "n4's seqs 1 and 2 at n1" 10 test "$(head_of n4)" = 2
refusal_logged() { grep -q "refused changeset $(key_of 4) seq 3" "$T/n1/loketd.log"; }
wait_for "the refusal in n1's log" 10 refusal_logged
grep -qF "refused changeset $(key_of 4) seq 3: it is signed with key $(key_of 4), which the roster revokes for this member after seq 2" \
	"$T/n1/loketd.log" || fail "the refusal does not name origin, seq and key"
assert_eq 2 "$(head_of n4)" "n4's head after changesets of a revoked key"
# Sent again, they are dropped before verification, and not logged again:
# the chain is not taken, nor asked for, beyond seq 2 until a reload.
peer 2 relay b 1 4 "$T/n4/node.key" >/dev/null
assert_eq 1 "$(grep -c "refused changeset $(key_of 4) seq" "$T/n1/loketd.log")" "refusals logged"
assert_eq 2 "$(head_of n4)" "n4's head after the same changesets again"
# ... and the revoked key may no longer connect.
out=$(peer 4 chain c 1 1)
assert_contains "$out" "no connection" "n4 connecting with its revoked key"

stop_node "$T/n1"
l 1 verify >"$T/verify.out" 2>&1 || fail "verify failed: $(cat "$T/verify.out")"

# Revocations added later. n2's first key revoked after seq 3, where it
# signed the rotation record: nothing it signed is beyond, all verifies.
revoke 2 "$(key_of 2)" 3
l 1 verify >"$T/verify.out" 2>&1 || fail "verify failed with n2's old key revoked after its rotation: $(cat "$T/verify.out")"
# After seq 1: verify reports what that key signed beyond it, and not what the new key signed.
revoke 2 "$(key_of 2)" 1
rc=0
l 1 verify >"$T/verify.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "verify's exit status with a revoked key's changesets held"
assert_contains "$(cat "$T/verify.out")" "n2 seq 2: signed with key $(key_of 2), which the roster revokes after seq 1" \
	"verify's report"
assert_contains "$(cat "$T/verify.out")" "n2 seq 3: signed with key $(key_of 2)" "verify's report of seq 3"
if grep -q "n2 seq 4: signed" "$T/verify.out"; then fail "verify blames seq 4, signed by the new key"; fi
pass
