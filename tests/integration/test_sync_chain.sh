#!/usr/bin/env bash
# (a) A chain n1 - n2 - n3: n1 and n3 never connect, yet writes at n1 and
# at n3 reach all three, relayed by n2; and `loket peers` shows the sessions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 3
knows 1 2 dial
knows 1 3
knows 2 1
knows 2 3 dial
knows 3 2
knows 3 1
for i in 1 2 3; do start_node "$T/n$i"; done
for i in 1 2 3; do wait_for "writes open at n$i" 20 writes_open "$i"; done

l 1 put expert ada --json '{"name":"Ada Lovelace"}' >/dev/null
l 3 put question q1 --json '{"title":"Schoon water in de Merenwijk?"}' >/dev/null
wait_for "n1's write at n3" 20 has 3 expert ada n1
wait_for "n3's write at n1" 20 has 1 question q1 n3
wait_for "all three converged" 20 converged 1 2 3
assert_eq "Ada Lovelace" "$(l 3 get expert ada --owner n1 --json | jq -r .fields.name)" "relayed value"

# peers: n2 has sessions with both; n1 and n3 have none with each other.
peers=$(l 2 peers --json)
assert_eq 2 "$(jq '[.[] | select(.session != null)] | length' <<<"$peers")" "n2's sessions"
peers=$(l 1 peers --json)
assert_eq null "$(jq -r '.[] | select(.name == "n3") | .session' <<<"$peers")" "n1-n3 session"
assert_eq dialled "$(jq -r '.[] | select(.name == "n2") | .session' <<<"$peers")" "n1 dialled n2"
wait_for "n1 lacks nothing of n2" 20 bash -c "'$LOKET' -c '$T/n1/loket.conf' peers --json | jq -e '.[] | select(.name == \"n2\") | .we_lack == 0 and .they_lack == 0'"
l 1 peers | grep -q '^n2 ' || fail "readable peers output lacks n2"
for i in 1 2 3; do stop_node "$T/n$i"; done
pass
