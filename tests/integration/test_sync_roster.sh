#!/usr/bin/env bash
# (e) A key not in the roster is refused at connect; and roster changes
# without a restart: `loket reload` admits a new member, SIGHUP removes
# one, whose sessions close and whose later changesets are refused while
# what was held stays.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 3
# n1 and n2 know each other; n3 knows n1 and dials it, n1 does not know n3.
knows 1 2 dial
knows 2 1
knows 3 1 dial
for i in 1 2 3; do start_node "$T/n$i"; done
wait_for "writes open at n1" 20 writes_open 1

# (e) n3's key is refused by n1's ZAP handler, and n3 is told why.
wait_for "n1 refuses n3 at connect" 20 grep -q "zap: refused" "$T/n1/loketd.log"
wait_for "n3 sees the refusal" 20 bash -c "'$LOKET' -c '$T/n3/loket.conf' peers --json | jq -e '.[0].last_error | test(\"refused\")'"
assert_eq null "$(l 3 peers --json | jq -r '.[0].session')" "n3's session to n1"
assert_eq 1 "$(l 1 peers --json | jq length)" "n1's roster"

# reload: n1 and n2 admit n3; n3's write reaches both.
knows 1 3
knows 2 3
expect_status 0 l 1 reload --json
assert_eq '["n3"]' "$(jq -c .added <<<"$OUT")" "added by reload"
l 2 reload >/dev/null
knows 3 2 dial
l 3 reload >/dev/null
wait_for "writes open at n3" 30 writes_open 3
l 3 put expert e3 --json '{"name":"from n3"}' >/dev/null
wait_for "n3's write at n2" 30 has 2 expert e3 n3

# SIGHUP: n1 removes n3 again; n3's session closes, its old changesets stay.
sed -i '/^\[member n3\]/,$d' "$T/n1/loket.conf"
kill -HUP "${NODE_PID[$T/n1]}"
wait_for "n1 dropped n3" 20 bash -c "'$LOKET' -c '$T/n1/loket.conf' peers --json | jq -e 'length == 1'"
has 1 expert e3 n3 || fail "n3's changeset held before the removal is gone"
before=$(status_json 1 | jq -r '.heads.n3.seq')
l 3 put expert e4 --json '{"name":"after the removal"}' >/dev/null
wait_for "n2 has n3's new write" 30 has 2 expert e4 n3
# A write at n2 after it: once that reaches n1, n2 has told n1 of n3's
# new head too, and n1 has not taken it.
l 2 put expert e2 --json '{"name":"from n2"}' >/dev/null
wait_for "n2's write at n1" 20 has 1 expert e2 n2
assert_eq "$before" "$(status_json 1 | jq -r '.heads.n3.seq')" "n1's head of removed n3"
has 1 expert e4 n3 && fail "n1 took a changeset of a removed member"
for i in 1 2 3; do stop_node "$T/n$i"; done
pass
