#!/usr/bin/env bash
# The audit bundle (proto/FORMAT.md, section 15): a three-node federation
# converges; n1 is exported while it goes on writing (an import runs
# meanwhile), and the bundle verifies with no store and no configuration,
# with every origin, changeset and the replayed digest of the moment of
# the export. Bytes flipped in every section, at record headers, edges
# and throughout, are each caught with a sentence that names the section
# (and, in the changesets, the origin and seq). A fourth member, n4, whose
# key the test peer (tests/unit/test_sync --peer) holds, signs two
# changesets for seq 1: the bundle of a node holding that fork proof
# verifies, reports the fork, and a flipped byte in the proof is caught.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

command -v python3 >/dev/null || fail "python3 is needed"
PEER="$LOKET_BIN/tests/test_sync"
[ -x "$PEER" ] || fail "no test peer at $PEER"

make_nodes 4
mesh 3
for i in 1 2 3; do
	knows "$i" 4
	sed -i '/^\[node\]/a sync_interval = 1' "$T/n$i/loket.conf"
done
for i in 1 2 3; do start_node "$T/n$i"; done
for i in 1 2 3; do
	for k in 1 2 3; do
		l "$i" put expert "e$i-$k" --json "{\"name\":\"Expert $i.$k\",\"n\":$k}" >/dev/null
	done
	l "$i" del expert "e$i-2" >/dev/null
done
wait_for "the three nodes converged" 30 converged 1 2 3

# Exported while n1 writes: the bundle is one moment of the store.
jsonl "$T/more.jsonl" 1500 more
l 1 import "$T/more.jsonl" >"$T/import.out" 2>&1 &
import_pid=$!
expect_status 0 l 1 audit export "$T/live.bundle" --json
exported=$OUT
wait "$import_pid" || fail "the import beside the export failed: $(cat "$T/import.out")"
[ ! -e "$T/live.bundle.tmp" ] || fail "the export left its temporary file"
expect_status 1 l 1 audit export "$T/live.bundle"
assert_contains "$ERR" "exists; audit export never replaces a file"

# Checked with nothing but the file: no configuration, no store.
expect_status 0 env -u LOKET_CONF "$LOKET" verify --bundle "$T/live.bundle" --json
report=$OUT
assert_eq true "$(jq -r .ok <<<"$report")" "the live bundle verifies"
assert_eq 3 "$(jq -r .origins <<<"$report")" "origins in the bundle"
assert_eq 4 "$(jq -r .members <<<"$report")" "roster entries in the bundle"
assert_eq "$(jq -r .changesets <<<"$exported")" "$(jq -r .changesets <<<"$report")" "changesets"
assert_eq "$(jq -r .digest <<<"$exported")" "$(jq -r .digest <<<"$report")" "replayed digest"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --bundle "$T/live.bundle"
assert_contains "$OUT" "bundle of federation default: 4 roster entries, 3 origins,"
assert_contains "$(tail -n 1 <<<"$OUT")" ": ok"

# A quiet node's bundle is its status: the same digest; and its
# checkpoints, each of its origin's head, cosigned by the two others.
wait_for "the import reached n2 and n3" 30 converged 1 2 3
# witnessed: n2 holds each origin's checkpoint at its head, cosigned by two.
witnessed() {
	local heads
	heads=$(status_json 2 | jq -c '.heads | map_values(.seq)')
	[ "$(l 2 checkpoints --json | jq --argjson h "$heads" \
		'[.[] | select((.cosigners | length) == 2 and .size == $h[.origin])] | length')" = 3 ]
}
wait_for "n2 holding every head's checkpoint, cosigned by two" 30 witnessed
expect_status 0 l 2 audit export "$T/n2.bundle"
assert_contains "$OUT" " 3 checkpoints, " "checkpoints exported"
expect_status 0 "$LOKET" verify --bundle - <"$T/n2.bundle" --json
assert_eq "$(status_json 2 | jq -r .digest)" "$(jq -r .digest <<<"$OUT")" "n2's digest"
assert_eq '[["n1",2,"matches"],["n2",2,"matches"],["n3",2,"matches"]]' \
	"$(jq -c '[.checkpoints[] | [.origin, .cosigned, .tree]] | sort' <<<"$OUT")" \
	"checkpoints: each cosigned by two members, each the tree of its changesets"
expect_status 0 "$LOKET" verify --bundle "$T/n2.bundle"
assert_contains "$OUT" "checkpoint: n1 size $(status_json 2 | jq .heads.n1.seq): signed by its origin, cosigned by 2 distinct members"

# Flipping bytes: every section, headers, edges and throughout. Each flip
# runs loket once; a sanitizer build, several times slower to start, takes
# every tenth of the positions (a normal build every third).
every=3
if ldd "$LOKET" 2>/dev/null | grep -q libasan; then every=10; fi
flips() {
	python3 - "$1" "$LOKET" "$T/flip.bundle" "$every" <<'EOF'
import struct, subprocess, sys
src, loket, tmp, every = sys.argv[1:5]
b = open(src, "rb").read()
recs, at = [], 8
while at < len(b):
    tag, ln = chr(b[at]), struct.unpack(">I", b[at + 1:at + 5])[0]
    recs.append((tag, at, ln))
    at += 5 + ln
pos = set(range(8))
sections = {"R": "section roster", "K": "section checkpoints", "S": "section split views",
            "F": "section forks", "C": "section changesets", "M": "manifest", "E": "end record"}
for i, (tag, at, ln) in enumerate(recs):
    pos.update(range(at, at + 5))                              # the header
    pos.update(range(at + 5, min(at + 5 + ln, at + 13)))       # the first bytes
    pos.update(range(max(at + 5, at + 5 + ln - 8), at + 5 + ln))  # the last bytes
    step = {"E": 1, "F": 1, "R": 2, "M": 5}.get(tag, max(1, ln // 16))
    pos.update(range(at + 5, at + 5 + ln, step))
def where(p):
    for tag, at, ln in recs:
        if at <= p < at + 5 + ln:
            return tag
    return "magic"
first_c = next(at for tag, at, ln in recs if tag == "C")
n = missed = 0
seen = set()
for p in sorted(pos)[::int(every)]:
    x = bytearray(b)
    x[p] ^= 0x20 if p % 2 else 0x01
    open(tmp, "wb").write(x)
    r = subprocess.run([loket, "verify", "--bundle", tmp], capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines()
             if l.startswith(("section ", "manifest", "end record", "bundle:"))]
    tag = where(p)
    seen.add(tag)
    n += 1
    if r.returncode != 1 or not lines:
        print(f"byte {p} ({tag}): exit {r.returncode}, not caught: {r.stdout} {r.stderr}")
        missed += 1
    elif tag == "C" and not any(", origin " in l and ", seq " in l for l in lines) and not (
            p < first_c + 5 + recs[[r[1] for r in recs].index(first_c)][2]
            and any("first changeset" in l or "after the last record of the" in l for l in lines)):
        print(f"byte {p} (changeset): no origin and seq named: {lines}")
        missed += 1
print(f"{n} flips in {''.join(sorted(seen))}, {missed} missed")
sys.exit(1 if missed else 0)
EOF
}
expect_status 0 flips "$T/n2.bundle"
echo "$OUT"
assert_contains "$OUT" "CEKMR" "sections flipped"
assert_contains "$OUT" ", 0 missed"

# A fork: n4's key signs two changesets for seq 1; n1 proves it.
declare -A KEY EP
KEY[1]=$(member_field "$T/n1.member" key)
EP[1]=$(member_field "$T/n1.member" endpoint)
as4() { "$PEER" --peer "$T/n4/node.key" "${KEY[1]}" "${EP[1]}" "$@" >/dev/null; }
proved() { [ "$(status_json 1 | jq '[.forks[] | select(.origin == "n4")] | length')" = 1 ]; }
as4 chain A 1 1
as4 chain B 1 1
wait_for "n4's fork proved at n1" 30 proved
expect_status 0 l 1 audit export "$T/fork.bundle" --json
assert_eq 1 "$(jq -r .forks <<<"$OUT")" "fork proofs exported"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --bundle "$T/fork.bundle"
assert_contains "$OUT" "fork: n4 seq 1: the origin signed two changesets for this seq"
assert_contains "$(tail -n 1 <<<"$OUT")" ": ok"
expect_status 0 "$LOKET" verify --bundle "$T/fork.bundle" --json
assert_eq '[{"origin":"n4","seq":1}]' "$(jq -c '[.forks[] | {origin, seq}]' <<<"$OUT")" "forks reported"
# A byte of a changeset of the proof (its last: a signature byte).
python3 - "$T/fork.bundle" "$T/fork-flip.bundle" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
at = 8
while chr(b[at]) != "F":
    at += 5 + struct.unpack(">I", b[at + 1:at + 5])[0]
ln = struct.unpack(">I", b[at + 1:at + 5])[0]
b[at + 5 + ln - 1] ^= 1
open(sys.argv[2], "wb").write(b)
EOF
expect_status 1 "$LOKET" verify --bundle "$T/fork-flip.bundle"
assert_contains "$OUT" "section forks, origin n4, seq 1: fork proof: the signature of a changeset of the proof does not verify"
pass
