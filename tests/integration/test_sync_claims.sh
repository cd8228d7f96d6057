#!/usr/bin/env bash
# Claims are hints. n2's changesets reach n1 only through n3 (a chain
# n2-n3-n1), so n1 pulls them with wants. A member n4, its key held by the
# test peer, connects to n1 and says in its hello that it holds n2's chain
# up to seq 1000, then answers nothing. n1 first asks the liar (it claims
# the most), gives up on it after the want's timeout, and takes n2's
# changesets from n3: replication of n2 goes on while n4 stays connected.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"
make_nodes 4
knows 1 3 dial
knows 1 2
knows 1 4
knows 3 1
knows 3 2 dial
knows 2 3
for i in 1 2 3; do sed -i '/^\[node\]/a sync_interval = 1' "$T/n$i/loket.conf"; done
for i in 1 2 3; do start_node "$T/n$i"; done
for i in 1 2 3; do wait_for "writes open at n$i" 20 writes_open "$i"; done
n1key=$(member_field "$T/n1.member" key)
n1ep=$(member_field "$T/n1.member" endpoint)
n2key=$(member_field "$T/n2.member" key)

"$PEER" --peer "$T/n4/node.key" "$n1key" "$n1ep" claim "$n2key" 1000 25 >/dev/null &
LIAR=$!
claimed() { [ "$(l 1 peers --json | jq -r '.[] | select(.name == "n4") | .we_lack')" -ge 990 ]; }
wait_for "the liar's claim at n1" 10 claimed
for k in 1 2 3 4 5; do l 2 put expert "claimed$k" --json "{\"name\":\"Expert $k\"}" >/dev/null; done
wait_for "n2's writes at n1 despite the liar" 20 has 1 expert claimed5 n2
kill -0 "$LIAR" 2>/dev/null || fail "the liar left before n1 had n2's writes"
assert_contains "$(l 1 peers --json | jq -r '.[] | select(.name == "n4") | .last_error')" \
	"did not answer a want" "the liar's unanswered want in peers"
wait "$LIAR" || true
pass
