#!/usr/bin/env bash
# A member's checkpoints are checked before they are cosigned, by the real
# protocol with a real member key (the test peer, tests/unit/test_sync
# --peer, holds n2's key): a checkpoint of the tree n1 holds is cosigned; a
# validly signed one whose root is not the tree of n2's changesets n1 holds
# is a split-view proof (of the one-note kind) that freezes n2 at its size;
# one whose signature does not verify is a protocol error that drops the
# session. None of it raises n1's own key alarm.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
make_nodes 2
knows 1 2
KEY1=$(member_field "$T/n1.member" key)
EP1=$(member_field "$T/n1.member" endpoint)
as2() { "$PEER" --peer "$T/n2/node.key" "$KEY1" "$EP1" "$@" >/dev/null; }
start_node "$T/n1"
head_is() { [ "$(status_json 1 | jq -r ".heads.n2.seq // 0")" = "$1" ]; }
ckpt() { l 1 checkpoints --json | jq -c '.[] | select(.origin == "n2")'; }

as2 chain A 1 3
wait_for "n2's seq 1..3 at n1" 10 head_is 3
as2 ckpt 3 good
c=$(ckpt)
assert_eq 3 "$(jq -r .size <<<"$c")" "the size of n2's checkpoint at n1"
assert_eq '["n1"]' "$(jq -c .cosigners <<<"$c")" "who cosigned n2's checkpoint"

# A checkpoint of a root n1's tree does not have: a split-view proof, n2 frozen at 2.
as2 ckpt 2 badroot
split2() { [ "$(status_json 1 | jq -c '[.splits[] | select(.origin == "n2") | .size]')" = "[2]" ]; }
wait_for "the split-view proof of n2 at size 2" 5 split2
assert_eq 2 "$(status_json 1 | jq -r '.heads.n2.seq')" "n2's head at n1, frozen at size 2"
grep -q "SPLIT VIEW: origin .*a checkpoint whose root is not the tree of its changesets" \
	"$T/n1/loketd.log" || fail "n1 did not log the split view"

# A checkpoint whose log signature fails: the session is dropped, and n2 is shut out.
as2 ckpt 2 badsig
offended() { [ "$(l 1 peers --json | jq -r '.[] | select(.name == "n2") | .offences')" -ge 1 ]; }
wait_for "n2's offence" 5 offended
l 1 peers --json | jq -r '.[] | select(.name == "n2") | .last_error' | grep -q "not signed by its origin" ||
	fail "the error does not say why: $(l 1 peers --json)"
[ "$(status_json 1 | jq -r .key_alarm)" = null ] || fail "n1 raised its own key alarm"
pass
