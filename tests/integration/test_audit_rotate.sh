#!/usr/bin/env bash
# Bundles and proofs across a key rotation (proto/FORMAT.md, sections 14
# and 15): in a three-node mesh n1 writes, rotates its key with `loket
# rotate-key` and writes on under the new key. The bundle exported at n2
# verifies with no store and no configuration (each seq under the key the
# chain names, n1's checkpoint under the key after its size); a proof of
# an entity written after the rotation carries the rotation record and
# verifies alone with --key pinning n1's origin; and a bundle exported
# with a roster that revokes n1's new key after the rotation's seq reports
# every changeset that key signed later.
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
out=$(l 1 rotate-key --json) || fail "rotate-key failed"
rseq=$(jq -r .seq <<<"$out")
new=$(jq -r .key <<<"$out")
l 1 put expert bob --json '{"name":"Bob na de rotatie"}' >/dev/null
l 1 put expert ada --json '{"field":"engines"}' >/dev/null
head1=$(status_json 1 | jq -r .heads.n1.seq)
assert_eq $((rseq + 2)) "$head1" "n1's head"
cosigned() {
	[ "$(l 2 checkpoints --json | jq "[.[] | select(.origin == \"n1\" and .size == $head1 and (.cosigners | length) == 2)] | length")" = 1 ]
}
wait_for "n1's checkpoint of size $head1 cosigned by two, at n2" 20 cosigned
wait_for "three nodes converged" 15 converged 1 2 3

# The bundle follows the rotation: seqs after it under the new key, n1's
# checkpoint under the key after its size, the cosignatures under each
# member's newest key.
expect_status 0 l 2 audit export "$T/n2.bundle"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --bundle "$T/n2.bundle" --json
assert_eq "true 0" "$(jq -r '"\(.ok) \(.problems | length)"' <<<"$OUT")" "the rotated chain's bundle verifies"
ck=$(jq -c '.checkpoints[] | select(.origin == "n1")' <<<"$OUT")
assert_eq "$head1 2 matches" "$(jq -r '"\(.size) \(.cosigned) \(.tree)"' <<<"$ck")" "n1's checkpoint in the bundle"
expect_status 0 l 1 audit export "$T/n1.bundle"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --bundle "$T/n1.bundle" --json
assert_eq "true" "$(jq -r .ok <<<"$OUT")" "n1's own bundle verifies"

# A proof of bob (written after the rotation) carries the rotation record
# and verifies alone, with n1's origin pinned.
expect_status 0 l 2 prove expert/n1/bob --out "$T/bob.json"
assert_eq "[$rseq]" "$(jq -c '[.rotations[].seq]' "$T/bob.json")" "the proof's rotation records"
assert_eq "[$((rseq + 1))]" "$(jq -c '[.changesets[].seq]' "$T/bob.json")" "the proof's changesets"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --proof "$T/bob.json" --json --key "${KEY[1]}" --key "${KEY[2]}" --key "${KEY[3]}"
assert_eq "true $head1 1" "$(jq -r '"\(.ok) \(.size) \(.rotations)"' <<<"$OUT")" "the proof verifies, pinned"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --proof "$T/bob.json" --key "${KEY[1]}" --key "${KEY[2]}" --key "${KEY[3]}"
assert_contains "$OUT" "signed by its origin (its key after 1 rotation record), cosigned by 2 distinct members"
# Without its rotation record the proof no longer names the key of bob's seq.
jq 'del(.rotations)' "$T/bob.json" >"$T/bob-norot.json"
expect_status 1 env -u LOKET_CONF "$LOKET" verify --proof "$T/bob-norot.json" --key "${KEY[1]}"
assert_contains "$OUT" "the origin's signature does not verify"
# A proof of ada (seqs 1 and rseq + 2, on both sides of the rotation).
expect_status 0 l 2 prove expert/n1/ada --out "$T/ada.json"
assert_eq "[1,$((rseq + 2))]" "$(jq -c '[.changesets[].seq]' "$T/ada.json")" "ada's changesets"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --proof "$T/ada.json" --json --key "${KEY[1]}"
assert_eq true "$(jq -r .ok <<<"$OUT")" "ada's proof verifies across the rotation"

# n2's roster revokes n1's new key after the rotation's seq: the bundle it
# exports carries the revocation (a version 2 roster entry) and verify
# reports the two changesets signed by that key after it.
awk -v k="key = ${KEY[1]}" -v r="revoke = $new after $rseq" '{ print } $0 == k { print r }' \
	"$T/n2/loket.conf" >"$T/n2/loket.conf.new"
mv "$T/n2/loket.conf.new" "$T/n2/loket.conf"
expect_status 0 l 2 audit export "$T/revoked.bundle"
expect_status 1 env -u LOKET_CONF "$LOKET" verify --bundle "$T/revoked.bundle" --json
revoked=$(jq -c '[.problems[] | select(.problem | contains("which the roster revokes after seq '"$rseq"'")) | [.origin, .seq]]' <<<"$OUT")
assert_eq "[[\"n1\",$((rseq + 1))],[\"n1\",$((rseq + 2))]]" "$revoked" "the changesets of the revoked key"
assert_eq 2 "$(jq '.problems | length' <<<"$OUT")" "no other problem"
assert_eq "[[\"$new\",$rseq]]" "$(jq -c '.roster[] | select(.name == "n1") | .revoke' <<<"$OUT")" "the roster's revocation"
assert_contains "$(jq -r '.problems[0].problem' <<<"$OUT")" "signed with key $new"

for i in 1 2 3; do stop_node "$T/n$i"; done
pass
