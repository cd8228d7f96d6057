#!/usr/bin/env bash
# Forks end the same everywhere. Two members, n3 and n4, are keys held by
# the test peer (tests/unit/test_sync --peer), which signs two branches of
# each one's chain:
#   - n3: branch A seq 1 reaches n1, branch B seq 1-2 reaches n2, while the
#     two are apart; once they meet, n1 finds B's seq 2 linked to another
#     seq 1 than its own, fetches it, and holds a fork proof;
#   - n4: seq 1 of A reaches both, then B's seq 1 only n1 (which proves the
#     fork) and A's seq 2 only n2 (which extends the chain, not knowing).
#   - n1: its own key (in the test peer's hands too) signs a rival of the
#     seq 1 n1 wrote; n1 learns the proof from n2 and never signs again.
# Both honest nodes end holding all three proofs, the origins frozen before
# seq 1, with the same state digest; verify on each reports the three forks
# and nothing else, and the log stays quiet meanwhile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
make_nodes 4
knows 1 2 dial
knows 2 1
for i in 1 2; do
	knows "$i" 3
	knows "$i" 4
	sed -i '/^\[node\]/a sync_interval = 1' "$T/n$i/loket.conf"
done
declare -A KEY EP
for i in 1 2; do
	KEY[$i]=$(member_field "$T/n$i.member" key)
	EP[$i]=$(member_field "$T/n$i.member" endpoint)
done
# as MEMBER NODE MODE ARGS...: the test peer, holding MEMBER's key, at node NODE.
as() {
	local member=$1 node=$2
	shift 2
	"$PEER" --peer "$T/n$member/node.key" "${KEY[$node]}" "${EP[$node]}" "$@" >/dev/null
}
head_of() { status_json "$1" | jq -r ".heads.$2.seq // 0"; }
head_is() { [ "$(head_of "$1" "$2")" = "$3" ]; }
# proved I ORIGIN SEQ: node I holds ORIGIN's fork proof at SEQ, with two changesets.
proved() {
	[ "$(status_json "$1" |
		jq -r "[.forks[] | select(.origin == \"$2\" and .seq == $3 and (.hashes | length) == 2)] | length")" = 1 ]
}

# n3: two branches, held apart.
start_node "$T/n1"
as 3 1 chain A 1 1
wait_for "n3's branch A at n1" 10 head_is 1 n3 1
stop_node "$T/n1"
start_node "$T/n2"
as 3 2 chain B 1 2
wait_for "n3's branch B at n2" 10 head_is 2 n3 2
start_node "$T/n1"
wait_for "n3's fork proved at n1" 30 proved 1 n3 1
wait_for "n3's fork proof passed on to n2" 30 proved 2 n3 1
wait_for "n1 and n2 converged" 30 converged 1 2
for i in 1 2; do
	assert_eq 0 "$(head_of "$i" n3)" "n3's head at n$i"
	has "$i" expert evil1 n3 && fail "n$i still holds n3's forked seq 1"
done

# n4: a fork known at one node, an extension at the other.
as 4 1 chain A 1 1
wait_for "n4's seq 1 at n2" 20 head_is 2 n4 1
as 4 1 chain B 1 1
as 4 2 chain A 2 2
wait_for "n4's fork proved at n1" 30 proved 1 n4 1
wait_for "n4's fork proved at n2" 30 proved 2 n4 1
wait_for "n1 and n2 converged again" 30 converged 1 2
assert_eq 0 "$(head_of 2 n4)" "n4's head at n2, which had taken seq 2"

# n1's own key signs a rival of n1's seq 1 (the key is in other hands): n2
# proves it, n1 learns it and refuses to sign again, for good.
l 1 put org mine --json '{"name":"n1 writes seq 1"}' >/dev/null
wait_for "n1's seq 1 at n2" 20 head_is 2 n1 1
# (n2 heeds one connection per member: the rival comes while n1 is away.)
stop_node "$T/n1"
as 1 2 chain A 1 1
wait_for "n1's own fork proved at n2" 30 proved 2 n1 1
start_node "$T/n1"
wait_for "n1's own fork proved at n1" 30 proved 1 n1 1
expect_status 1 "$LOKET" -c "$T/n1/loket.conf" put org more --json '{"name":"after the fork"}'
assert_contains "$ERR" "fork proof of this node's own key at seq 1" "n1's refusal after its own fork"
assert_contains "$(l 1 status)" "writes: refused" "n1's status after its own fork"
wait_for "n1 and n2 converged after n1's own fork" 30 converged 1 2

# Quiet once converged: over three sync rounds the logs grow by a few lines.
lines() { cat "$T/n1/loketd.log" "$T/n2/loketd.log" | wc -l; }
seen() { l 1 peers --json | jq -r '.[] | select(.name == "n2") | .last_seen'; }
before=$(lines)
since=$(seen)
later() { [ "$(seen)" -ge $((since + 3000)) ]; }
wait_for "three more sync rounds" 20 later
grown=$(($(lines) - before))
[ "$grown" -le 12 ] || fail "the logs grew by $grown lines in three sync rounds"
assert_eq "$(state 1)" "$(state 2)" "state after three more rounds"

# Verify on each node reports the two forks, each proof holding, and nothing else.
for i in 1 2; do
	stop_node "$T/n$i"
	expect_status 1 "$LOKET" -c "$T/n$i/loket.conf" verify --json
	assert_eq 3 "$(jq '.problems | length' <<<"$OUT")" "problems at n$i"
	assert_eq 3 "$(jq '[.problems[] | select(.seq == 1 and (.problem | contains("the proof holds")))] | length' <<<"$OUT")" \
		"proved forks at n$i"
	assert_eq '["n1","n3","n4"]' "$(jq -c '[.problems[].origin] | sort' <<<"$OUT")" "forked origins at n$i"
done
pass
