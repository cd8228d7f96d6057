#!/usr/bin/env bash
# A node made to present two different trees is caught. n1's data directory
# and key are copied, and the copy (n1c) is started as a second node that
# connects only to n3, while n1 connects only to n2; each of the two writes
# something else as its seq 2 and signs a checkpoint of size 2. When n3
# comes up between n2 and the copy, it holds two checkpoints of n1 of one
# size with two roots: a split-view proof, which it keeps and passes on
# until every node holds it, n1's origin frozen at that size. n1 and its
# copy each see a changeset and a checkpoint under their key that they did
# not sign: the key alarm is raised (status, metrics, the log), and `loket
# status` exits non-zero.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 3
knows 1 2 dial
knows 2 1
knows 2 3
knows 3 2 dial
knows 3 1
for i in 1 2 3; do
	sed -i '/^\[node\]/a sync_interval = 1' "$T/n$i/loket.conf"
done
start_node "$T/n1"
start_node "$T/n2"
l 1 put org shared --json '{"name":"before the copy"}' >/dev/null
head_is() { [ "$(status_json "$1" | jq -r ".heads.$2.seq // 0")" = "$3" ]; }
wait_for "n1's seq 1 at n2" 10 head_is 2 n1 1

# The copy: n1's directory and key, its own port, n3 as its only peer.
stop_node "$T/n1"
cp -a "$T/n1" "$T/n1c"
port=$(free_port)
sed -i -e "s|^listen = .*|listen = tcp://127.0.0.1:$port|" -e '/^\[member n2\]/,$d' "$T/n1c/loket.conf"
add_member "$T/n1c" "$T/n3.member"
sed -i "/^\[member n1\]/,/^\[/ s|^key = .*|&\nendpoint = tcp://127.0.0.1:$port|" "$T/n3/loket.conf"
start_node "$T/n1"
start_node "$T/n1c"
l 1 put org side --json '{"name":"what n2 sees"}' >/dev/null
loket_in "$T/n1c" put org side --json '{"name":"what n3 sees"}' >/dev/null

ckpt_size() { loket_in "$1" checkpoints --json | jq -r ".[] | select(.origin == \"n1\") | .size"; }
wait_for "n1's checkpoint at size 2 at n2" 10 eval '[ "$(ckpt_size "$T/n2")" = 2 ]'
wait_for "the copy's checkpoint at size 2" 10 eval '[ "$(ckpt_size "$T/n1c")" = 2 ]'

start_node "$T/n3"
# split DIR: the node in DIR holds a split-view proof of n1 at size 2.
split() {
	local rc=0 s
	s=$(loket_in "$1" status --json 2>/dev/null) || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || return 1
	[ "$(jq -r '[.splits[] | select(.size == 2)] | length' <<<"$s")" = 1 ]
}
for d in n3 n2 n1 n1c; do
	wait_for "the split-view proof of n1 at $d" 15 split "$T/$d"
done

# The proof is kept: it survives a restart, and checkpoints shows it.
stop_node "$T/n2"
start_node "$T/n2"
split "$T/n2" || fail "n2 lost the split-view proof over a restart"
loket_in "$T/n2" checkpoints --json | jq -e '.[] | select(.origin == "n1") | .split.size == 2' >/dev/null ||
	fail "checkpoints does not show n1's split view at n2"
grep -q "SPLIT VIEW" "$T/n3/loketd.log" || fail "n3 did not log the split view"

# The key alarm, at n1 and at its copy.
alarm() {
	local rc=0
	loket_in "$1" status --json >"$T/st.json" || rc=$?
	[ "$rc" = 3 ] && [ "$(jq -r '.key_alarm.count // 0' "$T/st.json")" -ge 1 ]
}
for d in n1 n1c; do
	wait_for "the key alarm at $d" 15 alarm "$T/$d"
	grep -q "KEY ALARM" "$T/$d/loketd.log" || fail "$d did not log the key alarm"
done
rc=0
loket_in "$T/n1" status >/dev/null 2>"$T/status.err" || rc=$?
assert_eq 3 "$rc" "loket status at n1, whose key signed elsewhere"
grep -q "KEY ALARM" "$T/status.err" || fail "status does not say why: $(cat "$T/status.err")"
# Witnesses raise no alarm of their own.
for d in n2 n3; do
	[ "$(loket_in "$T/$d" status --json 2>/dev/null | jq -r '.key_alarm')" = null ] ||
		fail "$d raised the key alarm"
done
pass
