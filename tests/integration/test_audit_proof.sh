#!/usr/bin/env bash
# Inclusion proofs (proto/FORMAT.md, section 15.6): in a three-node mesh,
# n1 writes an entity twice with another write between; once n2 holds
# n1's checkpoint of that size cosigned by n2 and n3, `loket prove` at n2
# writes the proof of the entity's two changesets (and of one changeset by
# ORIGIN SEQ), which `loket verify --proof` checks alone, with no store
# and no configuration, and against pinned keys. The same proof fails
# against a different checkpoint (a later one of n1, one of n2), with a
# changed changeset, and when the origin's key is not among those pinned.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 3
mesh 3
for i in 1 2 3; do
	sed -i '/^\[node\]/a sync_interval = 1' "$T/n$i/loket.conf"
done
for i in 1 2 3; do start_node "$T/n$i"; done
declare -A KEY
for i in 1 2 3; do KEY[$i]=$(member_field "$T/n$i.member" key); done

l 1 put expert ada --json '{"name":"Ada Lovelace"}' >/dev/null
l 1 put org ul --json '{"name":"Universiteit Leiden"}' >/dev/null
l 1 put expert ada --json '{"field":"engines"}' >/dev/null
l 2 put org lumc --json '{"name":"LUMC"}' >/dev/null
# cosigned ORIGIN SIZE: n2 holds ORIGIN's checkpoint of SIZE, cosigned by the two others.
cosigned() {
	[ "$(l 2 checkpoints --json | jq "[.[] | select(.origin == \"$1\" and .size == $2 and (.cosigners | length) == 2)] | length")" = 1 ]
}
wait_for "n1's checkpoint of size 3 cosigned by two, at n2" 20 cosigned n1 3
wait_for "n2's checkpoint of size 1 cosigned by two, at n2" 20 cosigned n2 1

expect_status 0 l 2 prove expert/n1/ada --out "$T/ada.json"
expect_status 1 l 2 prove expert/n1/ada --out "$T/ada.json"
assert_contains "$ERR" "exists; prove never replaces a file"
assert_eq '[1,3]' "$(jq -c '[.changesets[].seq]' "$T/ada.json")" "the entity's changesets"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --proof "$T/ada.json" --json
assert_eq true "$(jq -r .ok <<<"$OUT")" "the proof verifies alone"
assert_eq 3 "$(jq -r .size <<<"$OUT")" "checkpoint size"
assert_eq 2 "$(jq -r .cosigned <<<"$OUT")" "distinct cosigners"
assert_eq false "$(jq -r .keys_pinned <<<"$OUT")" "no key pinned"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --proof "$T/ada.json"
assert_contains "$OUT" "keys: taken from the proof itself"
assert_contains "$OUT" "checkpoint: n1 size 3, signed by its origin, cosigned by 2 distinct members"
assert_contains "$(tail -n 1 <<<"$OUT")" "verified proof of 2 changesets: ok"

# Pinned keys: all three; then without n3 (its cosignature no longer
# counts); then without the origin's own key.
expect_status 0 "$LOKET" verify --proof "$T/ada.json" --json --key "${KEY[1]}" --key "${KEY[2]}" --key "${KEY[3]}"
assert_eq "true 2 true" "$(jq -r '"\(.ok) \(.cosigned) \(.keys_pinned)"' <<<"$OUT")" "pinned all three"
expect_status 0 "$LOKET" verify --proof "$T/ada.json" --json --key "${KEY[1]}" --key "${KEY[2]}"
assert_eq 1 "$(jq -r .cosigned <<<"$OUT")" "cosigners among two pinned keys"
expect_status 1 "$LOKET" verify --proof "$T/ada.json" --key "${KEY[2]}" --key "${KEY[3]}"
assert_contains "$OUT" "checkpoint: the origin's key is not one of the keys pinned"
# A configuration's roster is pinned too.
expect_status 0 l 3 verify --proof "$T/ada.json" --json
assert_eq "true 2" "$(jq -r '"\(.keys_pinned) \(.cosigned)"' <<<"$OUT")" "pinned by n3's roster"

# What cannot be proved says why.
expect_status 1 l 2 prove expert/n1/nobody
assert_contains "$ERR" "the store holds no such entity"
expect_status 1 l 2 prove n1 99
assert_contains "$ERR" "before seq 99"

# One changeset by ORIGIN SEQ.
expect_status 0 l 2 prove n1 2 --out "$T/seq2.json"
expect_status 0 "$LOKET" verify --proof "$T/seq2.json"
assert_contains "$(tail -n 1 <<<"$OUT")" "verified proof of 1 changeset: ok"

# Against a different checkpoint: n1's next one, and n2's.
l 1 put expert ada --json '{"field":"analytical engines"}' >/dev/null
wait_for "n1's checkpoint of size 4 cosigned by two, at n2" 20 cosigned n1 4
expect_status 0 l 2 prove n1 4 --out "$T/seq4.json"
jq --slurpfile other "$T/seq4.json" '.checkpoint = $other[0].checkpoint' "$T/ada.json" >"$T/later.json"
expect_status 1 "$LOKET" verify --proof "$T/later.json"
assert_contains "$OUT" "seq 1: its inclusion path does not lead to the root of the checkpoint's tree of size 4"
assert_contains "$OUT" "seq 3: its inclusion path does not lead to the root of the checkpoint's tree of size 4"
expect_status 0 l 2 prove n2 1 --out "$T/n2.json"
jq --slurpfile other "$T/n2.json" '.checkpoint = $other[0].checkpoint' "$T/ada.json" >"$T/other.json"
expect_status 1 "$LOKET" verify --proof "$T/other.json"
assert_contains "$OUT" "checkpoint: its origin line names another origin than the proof's key"
# A changeset's bytes changed (one base64 character of its signature).
jq '.changesets[1].bytes |= (.[0:-6] + (if .[-6:-5] == "A" then "B" else "A" end) + .[-5:])' \
	"$T/ada.json" >"$T/changed.json"
expect_status 1 "$LOKET" verify --proof "$T/changed.json"
assert_contains "$OUT" "seq 3: the changeset's signature does not verify"
# A checkpoint's cosignature changed.
python3 - "$T/ada.json" "$T/cosig.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
lines = p["checkpoint"].split("\n")
last = [i for i, l in enumerate(lines) if l.startswith("\u2014 ")][-1]
l = lines[last]
lines[last] = l[:-6] + ("A" if l[-6] != "A" else "B") + l[-5:]
p["checkpoint"] = "\n".join(lines)
json.dump(p, open(sys.argv[2], "w"))
PY
expect_status 1 "$LOKET" verify --proof "$T/cosig.json"
assert_contains "$OUT" "does not verify"
pass
