#!/usr/bin/env bash
# Peers witness each other: three nodes in a mesh each sign checkpoints of
# their own log, and each checkpoint ends with the cosignatures of the two
# others, as every node shows it in `loket checkpoints --json`; a later
# write makes a larger checkpoint that is cosigned again, and the witnesses'
# cosignatures are timestamped and of the checkpoint's own size and root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 3
mesh 3
for i in 1 2 3; do
	sed -i '/^\[node\]/a sync_interval = 1' "$T/n$i/loket.conf"
done
for i in 1 2 3; do start_node "$T/n$i"; done
for i in 1 2 3; do
	l "$i" put org "o$i" --json "{\"name\":\"org of n$i\"}" >/dev/null
done

# ckpt I ORIGIN: node I's checkpoint of ORIGIN, one line of JSON.
ckpt() { l "$1" checkpoints --json | jq -c ".[] | select(.origin == \"$2\")"; }
# cosigned I ORIGIN SIZE A B: node I holds ORIGIN's checkpoint at SIZE cosigned by A and B only.
cosigned() {
	local c
	c=$(ckpt "$1" "$2") || return 1
	[ "$(jq -r .size <<<"$c")" = "$3" ] &&
		[ "$(jq -c '.cosigners | sort' <<<"$c")" = "[\"$4\",\"$5\"]" ]
}
for i in 1 2 3; do
	for o in 1 2 3; do
		others=()
		for w in 1 2 3; do [ "$w" = "$o" ] || others+=("n$w"); done
		wait_for "n$o's checkpoint at n$i with two cosignatures" 15 \
			cosigned "$i" "n$o" 1 "${others[@]}"
	done
done

# The checkpoint is the log's: its root is the tree of n1's one changeset,
# and its note is a C2SP signed note with the log's line and two cosignatures.
c=$(ckpt 2 n1)
key=$(member_field "$T/n1.member" key)
hash=$(l 2 status --json | jq -r '.heads.n1.hash')
root=$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(b"\0" + bytes.fromhex(sys.argv[1])).digest()).decode())' "$hash")
assert_eq "$root" "$(jq -r .root <<<"$c")" "n1's root at size 1 (the leaf hash of its changeset)"
assert_eq "$key" "$(jq -r .key <<<"$c")" "n1's key"
assert_eq 3 "$(jq -r .note <<<"$c" | grep -c '^— loket/default/')" "signature lines of n1's checkpoint"
[ "$(jq -r '[.cosignatures[].time] | min' <<<"$c")" -ge "$(($(date +%s) - 60))" ] ||
	fail "cosignature times are not recent: $c"

# A second write: the larger checkpoint is cosigned again by both.
l 1 put org o1b --json '{"name":"second"}' >/dev/null
for i in 1 2 3; do
	wait_for "n1's checkpoint at size 2 cosigned, at n$i" 15 cosigned "$i" n1 2 n2 n3
done
l 1 checkpoints | grep -q '^n1 .* 2 .*n2 n3' || fail "loket checkpoints does not list n1 at size 2: $(l 1 checkpoints)"
for i in 1 2 3; do
	grep -q "SPLIT\|KEY ALARM" "$T/n$i/loketd.log" && fail "n$i raised an alarm: $(cat "$T/n$i/loketd.log")"
done
pass
